"""Reads of orders, trades and positions, shaped for the API.

Each row carries its instrument's symbol through a subquery on the unique ``code.conid``
rather than a join: orders, trades and positions keep ``conid`` without a foreign-key
constraint, and an inner join would hide a row whose contract is not stored as a code.
"""

from django.db.models import Case, CharField, DecimalField, F, OuterRef, Subquery, Sum, Value, When
from django.db.models.functions import TruncDate

from marketdata.models import Code
from tradingsite.broker import get_broker
from tradingsite.querysets import built_once

from .models import Order, Position, Trade, TradeExit


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
