"""Writes of performance snapshots (seed 002's ``agent_performance``)."""

import logging
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

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
    of fees; ``equity`` is the curve they were computed from."""
    now = now or timezone.now()
    capital = strategy_capital(strategy)
    results = selectors.closed_results(strategy.pk)
    by_day = selectors.realized_by_day(strategy.pk)
    realized = sum(by_day.values(), Decimal(0))
    unrealized, position_value = Decimal(0), Decimal(0)
    for trade in selectors.open_trades(strategy.pk):
        direction = 1 if trade["order__side"] == "BUY" else -1
        price = trade["price"] if trade["price"] is not None else trade["entry_price"]
        unrealized += (price - trade["entry_price"]) * trade["remaining"] * direction
        unrealized -= trade["unbooked_fees"]
        position_value += price * trade["remaining"] * direction
    first = selectors.first_trade_day(strategy.pk) or now.date()
    equity = metrics.equity_curve(capital=capital, realized_by_day=by_day, first=first,
                                  last=now.date(), unrealized=unrealized)  # fmt: skip
    values = [value for _, value in equity]
    drawdown, drawdown_percent = metrics.max_drawdown(values)
    total = realized + unrealized
    return {
        "snapshot_time": now,
        "total_value": capital + total,
        "cash_balance": capital + total - position_value,
        "position_value": position_value,
        "realized_pnl": realized,
        "unrealized_pnl": unrealized,
        "total_pnl": total,
        "roi_percent": total / capital * 100 if capital else None,
        "num_trades": len(results),
        "num_winning_trades": sum(1 for r in results if r > 0),
        "num_losing_trades": sum(1 for r in results if r < 0),
        "win_rate": metrics.win_rate(results),
        "avg_win": metrics.average_win(results),
        "avg_loss": metrics.average_loss(results),
        "profit_factor": metrics.profit_factor(results),
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


@transaction.atomic
def performance_snapshot(*, strategy, now=None):
    """Write the strategy's figures now as an ``agent_performance`` row."""
    figures = strategy_figures(strategy=strategy, now=now)
    figures.pop("equity")
    return AgentPerformance.objects.create(
        strategy=strategy, **{name: _rounded(name, value) for name, value in figures.items()}
    )


def performance_snapshot_all(*, now=None):
    """A snapshot of every active strategy and of every strategy with an open trade; returns
    how many were written."""
    now = now or timezone.now()
    strategies = Strategy.objects.filter(active=True) | Strategy.objects.filter(
        decisions__orders__trades__isnull=False
    )
    count = 0
    for strategy in strategies.distinct().select_related("workflow"):
        performance_snapshot(strategy=strategy, now=now)
        count += 1
    return count


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
