"""Reads of orders, trades and positions, shaped for the API.

Each row carries its instrument's symbol through a subquery on the unique ``code.conid``
rather than a join: orders, trades and positions keep ``conid`` without a foreign-key
constraint, and an inner join would hide a row whose contract is not stored as a code.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, time
from decimal import Decimal

from django.conf import settings
from django.db.models import Case, CharField, DecimalField, F, OuterRef, Subquery, Sum, Value, When
from django.db.models.functions import TruncDate
from django.utils import timezone

from marketdata.models import Code
from tradingsite.broker import get_broker
from tradingsite.querysets import built_once

from .models import Order, Position, Trade, TradeExit, TradingAction, TradingActionKind


def instrument_code(field):
    """The instrument's code ``field`` (e.g. ``symbol``) through the unique ``code.conid``.

    Unordered: one code at most matches, so Code's default ordering would only add a sort to
    the subquery of every row.
    """
    return Subquery(
        Code.objects.filter(conid=OuterRef("instrument_id")).order_by().values(field)[:1]
    )


@built_once
def orders_list():
    """Newest first (index on ``created_at``), each with its decision's strategy."""
    return Order.objects.annotate(
        symbol=instrument_code("symbol"), strategy_id=F("decision__strategy_id")
    ).order_by("-created_at", "-id")


def exits_by_day(exits=None):
    """[{day, net, fees}] of ``exits`` (every exit by default), oldest first: each day's (UTC)
    realized P&L net of fees, and the fees it deducted."""
    exits = TradeExit.objects.all() if exits is None else exits
    return list(
        exits.annotate(day=TruncDate("exited_at"))
        .values("day")
        .annotate(net=Sum(F("realized_pnl") - F("fees")), fees=Sum("fees"))
        .order_by("day")
    )


def net_realized_pnl():
    """A trade's realized P&L net of fees: its exits' realized P&L minus their fees (IB's
    realized P&L); None while nothing of it is exited."""
    return Subquery(
        TradeExit.objects.filter(trade=OuterRef("pk"))
        .order_by()
        .values("trade")
        .annotate(net=Sum(F("realized_pnl") - F("fees")))
        .values("net")[:1],
        output_field=DecimalField(),
    )


def trade_status():
    """``closed`` once all of a trade's quantity is exited, else ``open`` (computed)."""
    return Case(
        When(exit_quantity=F("entry_quantity"), then=Value("closed")),
        default=Value("open"),
        output_field=CharField(),
    )


@built_once
def trades_list():
    """Newest first; ``strategy_id`` is its opening order's strategy (none for a manual order)."""
    return Trade.objects.annotate(
        symbol=instrument_code("symbol"),
        net_pnl=net_realized_pnl(),
        status=trade_status(),
    ).order_by("-entry_date", "-id")


@built_once
def positions_list():
    """Every position, open and closed (the API's ``state`` filter shows open ones by default)."""
    return Position.objects.annotate(symbol=instrument_code("symbol")).order_by(
        "-updated_at", "-id"
    )


def open_position_codes():
    """The codes of the contracts the book holds a position in (to price them)."""
    held = Position.objects.filter(closed_at__isnull=True).values("instrument_id")
    return list(Code.objects.filter(conid__in=held).order_by("conid"))


def account_summary(*, broker=None):
    """The IB account's money now: net liquidation, cash, buying power, available funds
    (``tradingsite.broker.AccountSummary``). Asks IB; a refusal is a BrokerError."""
    return (broker or get_broker()).account_summary()


def trading_halt():
    """The kill switch that halts trading now (the newest of the kill switches and resumes,
    when it is a kill switch), else None."""
    last = (
        TradingAction.objects.filter(
            kind__in=(TradingActionKind.KILL_SWITCH, TradingActionKind.RESUME)
        )
        .order_by("-created_at", "-id")
        .first()
    )
    return last if last is not None and last.kind == TradingActionKind.KILL_SWITCH else None


@dataclass(frozen=True)
class DailyLoss:
    percent: Decimal
    limit: Decimal
    realized: Decimal
    unrealized: Decimal

    @property
    def total(self):
        return self.realized + self.unrealized

    @property
    def breached(self):
        return self.total <= -self.limit

    @property
    def detail(self):
        return (
            f"today's net P&L {self.total:.2f} (realized net of fees {self.realized:.2f}, "
            f"unrealized {self.unrealized:.2f}); the limit is a loss of {self.limit:.2f} "
            f"({self.percent.normalize():f} % of the account)"
        )


def daily_loss_status(*, percent=None, account_size=None, now=None):
    """Today's (UTC) net realized P&L (exits net of fees) plus the open positions' unrealized
    P&L, against a loss of ``percent`` of ``account_size`` (by default the site's
    ``MAX_DAILY_LOSS_PCT`` and ``ACCOUNT_SIZE``). None when no limit is set."""
    if percent is None:
        percent = settings.MAX_DAILY_LOSS_PCT
    if percent is None:
        return None
    account_size = Decimal(account_size if account_size is not None else settings.ACCOUNT_SIZE)
    today = (now or timezone.now()).astimezone(UTC).date()
    start = datetime.combine(today, time(), tzinfo=UTC)
    realized = TradeExit.objects.filter(exited_at__gte=start).aggregate(
        net=Sum(F("realized_pnl") - F("fees"))
    )["net"]
    unrealized = Position.objects.filter(closed_at__isnull=True).aggregate(
        total=Sum("unrealized_pnl")
    )["total"]
    return DailyLoss(
        percent=Decimal(percent),
        limit=account_size * Decimal(percent) / 100,
        realized=realized or Decimal(0),
        unrealized=unrealized or Decimal(0),
    )


def trading_status(*, now=None):
    """What the header, the dashboard and the API say: halted or not (by whom, when), and
    today's P&L against the site's daily loss limit."""
    halt = trading_halt()
    loss = daily_loss_status(now=now)
    return {
        "halted": halt is not None,
        "halted_by": (halt.user or "the system") if halt else None,
        "halted_at": halt.created_at if halt else None,
        "daily_loss_limit_pct": loss.percent if loss else None,
        "daily_pnl": loss.total if loss else None,
        "daily_loss_breached": bool(loss and loss.breached),
        "daily_loss": loss,
    }
