"""Writes of performance snapshots (seed 002's ``agent_performance``)."""

import logging
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from orders.models import Trade
from strategies.models import Strategy
from strategies.risk import DEFAULTS
from tradingsite.decimals import quantize, to_decimal
from tradingsite.querysets import delete_in_batches
from workflows.engine.params import effective_params

from . import metrics, selectors
from .models import AgentPerformance

logger = logging.getLogger(__name__)

CENTS = Decimal("0.01")


def strategy_capital(strategy):
    """The strategy's ``account_size`` (its parameters, else its workflow's, else the risk
    gate's default): the capital its returns are measured on."""
    params = effective_params(workflow=strategy.workflow, strategy=strategy)
    return to_decimal(params.get("account_size", DEFAULTS["account_size"]), field="account_size")


def strategy_figures(*, strategy, now=None, risk_free=0.0):
    """The strategy's figures now (a dict of ``agent_performance`` columns, unrounded), net
    of fees; ``equity`` is the curve they were computed from, ``by_symbol`` the closed trades'
    totals per contract (``selectors.by_symbol`` shapes them)."""
    return strategies_figures(strategies=[strategy], now=now, risk_free=risk_free)[strategy.pk]


def strategies_figures(*, strategies, now=None, risk_free=0.0):
    """{strategy id: its figures} for ``strategies``, from four queries whatever their
    number and whatever their trades' number: the closed trades' counts and sums and the
    exits' net P&L per day, both from the strategies' days (``strategy_pnl_days``, a row per
    contract and day), and the open trades (their ids, then the trades); the sums are exact
    in NUMERIC, so the figures are those the formulas give on each trade's result."""
    now = now or timezone.now()
    ids = [strategy.pk for strategy in strategies]
    # Every strategy at once (no IN list) when there are many: the same rows, less to plan.
    among = ids if len(ids) <= 20 else None
    totals, contracts = selectors.closed_trade_totals(among)
    by_day = selectors.realized_by_day(among)
    open_trades = selectors.open_trades(among)
    figures = {}
    for strategy in strategies:
        figures[strategy.pk] = _figures(
            capital=strategy_capital(strategy), totals=totals.get(strategy.pk),
            by_day=by_day.get(strategy.pk, {}), open_trades=open_trades.get(strategy.pk, []),
            now=now, risk_free=risk_free,
        )  # fmt: skip
        figures[strategy.pk]["by_symbol"] = contracts.get(strategy.pk, [])
    return figures


def _figures(*, capital, totals, by_day, open_trades, now, risk_free):
    totals = totals or {
        "num_trades": 0, "num_winning_trades": 0, "num_losing_trades": 0,
        "gross_profit": Decimal(0), "gross_loss": Decimal(0), "first_entry": None,
    }  # fmt: skip
    realized = sum(by_day.values(), Decimal(0))
    unrealized, position_value = Decimal(0), Decimal(0)
    for trade in open_trades:
        direction = 1 if trade["side"] == "BUY" else -1
        price = trade["price"] if trade["price"] is not None else trade["entry_price"]
        unrealized += (price - trade["entry_price"]) * trade["remaining"] * direction
        unrealized -= trade["unbooked_fees"]
        position_value += price * trade["remaining"] * direction
    entries = [trade["entry_date"] for trade in open_trades]
    if totals["first_entry"] is not None:
        entries.append(totals["first_entry"])
    first = min(entries).date() if entries else now.date()
    equity = metrics.equity_curve(capital=capital, realized_by_day=by_day, first=first,
                                  last=now.date(), unrealized=unrealized)  # fmt: skip
    values = [value for _, value in equity]
    drawdown, drawdown_percent = metrics.max_drawdown(values)
    total = realized + unrealized
    wins, losses = totals["num_winning_trades"], totals["num_losing_trades"]
    return {
        "snapshot_time": now,
        "total_value": capital + total,
        "cash_balance": capital + total - position_value,
        "position_value": position_value,
        "realized_pnl": realized,
        "unrealized_pnl": unrealized,
        "total_pnl": total,
        "roi_percent": total / capital * 100 if capital else None,
        "num_trades": totals["num_trades"],
        "num_winning_trades": wins,
        "num_losing_trades": losses,
        "win_rate": metrics.win_rate_of(wins=wins, count=totals["num_trades"]),
        "avg_win": metrics.mean_of(totals["gross_profit"], wins),
        "avg_loss": metrics.mean_of(totals["gross_loss"], losses),
        "profit_factor": metrics.profit_factor_of(
            gross_profit=totals["gross_profit"], gross_loss=totals["gross_loss"]
        ),
        "sharpe_ratio": metrics.sharpe_ratio(metrics.daily_returns(values), risk_free=risk_free),
        "max_drawdown": drawdown,
        "max_drawdown_percent": drawdown_percent,
        "equity": equity,
    }


# Each column's places in the seed.
FOUR = Decimal("0.0001")
PLACES = {"roi_percent": FOUR, "profit_factor": FOUR, "sharpe_ratio": FOUR, "max_drawdown": FOUR}


def _rounded(name, value):
    if value is None or isinstance(value, int) or name == "snapshot_time":
        return value
    return quantize(Decimal(str(value)), PLACES.get(name, CENTS))


def _snapshot_row(strategy, figures):
    figures.pop("equity")
    figures.pop("by_symbol")
    return AgentPerformance(
        strategy=strategy, **{name: _rounded(name, value) for name, value in figures.items()}
    )


def performance_snapshot(*, strategy, now=None):
    """Write the strategy's figures now as an ``agent_performance`` row."""
    row = _snapshot_row(strategy, strategy_figures(strategy=strategy, now=now))
    row.save()
    return row


@transaction.atomic
def performance_snapshot_all(*, now=None):
    """A snapshot of every active strategy and of every strategy with a trade, in one insert;
    returns how many were written."""
    now = now or timezone.now()
    traded = Strategy.objects.filter(Exists(Trade.objects.filter(strategy=OuterRef("pk"))))
    strategies = list(
        (Strategy.objects.filter(active=True) | traded).select_related("workflow").order_by("id")
    )
    figures = strategies_figures(strategies=strategies, now=now)
    rows = [_snapshot_row(strategy, figures[strategy.pk]) for strategy in strategies]
    AgentPerformance.objects.bulk_create(rows, batch_size=1000)
    return len(rows)


def performance_snapshots_purge(*, now=None, days=None):
    """Thin the snapshots older than ``days`` (``PERFORMANCE_RETENTION_DAYS``) to one per
    strategy and day (UTC): the day's last, the one nearest the close and the equity curve's
    point; newer ones are all kept. Returns what it deleted."""
    days = settings.PERFORMANCE_RETENTION_DAYS if days is None else days
    before = (now or timezone.now()) - timedelta(days=days)
    later_that_day = AgentPerformance.objects.filter(
        Q(snapshot_time__gt=OuterRef("snapshot_time"))
        | Q(snapshot_time=OuterRef("snapshot_time"), id__gt=OuterRef("id")),
        strategy=OuterRef("strategy"),
        snapshot_time__date=OuterRef("day"),
    )
    stale = (
        AgentPerformance.objects.filter(snapshot_time__lt=before)
        .annotate(day=TruncDate("snapshot_time"))
        .filter(Exists(later_that_day))
    )
    deleted = delete_in_batches(stale)
    logger.info("retention: deleted %s performance snapshots taken before %s (one a day kept)",
                deleted, before.isoformat())  # fmt: skip
    return {"snapshots_deleted": deleted, "before": before.isoformat()}
