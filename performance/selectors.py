"""Reads of a strategy's trades for its performance figures, and of its snapshots."""

from django.db.models import Count, DecimalField, F, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncDate, TruncMonth, TruncWeek

from orders.models import Position, Trade, TradeExit
from orders.selectors import exits_by_day, instrument_code

from .models import AgentPerformance

ZERO = Value(0, output_field=DecimalField())


def strategy_trades(strategy_id):
    """The trades a strategy's decisions opened (a manual order's trades have no strategy)."""
    return Trade.objects.filter(order__decision__strategy_id=strategy_id)


def closed_results(strategy_id):
    """Each closed trade's net P&L (realized minus fees), oldest first."""
    return list(
        strategy_trades(strategy_id)
        .filter(exit_quantity=F("entry_quantity"))
        .order_by("exit_date", "id")
        .values_list(F("realized_pnl") - F("fees"), flat=True)
    )


def realized_by_day(strategy_id):
    """{day (UTC): net realized P&L of the exits that day}."""
    exits = TradeExit.objects.filter(trade__order__decision__strategy_id=strategy_id)
    return {row["day"]: row["net"] for row in exits_by_day(exits)}


def open_trades(strategy_id):
    """The strategy's trades with quantity still open, each with ``remaining``, ``direction``
    (1 long, -1 short), ``price`` (its contract's open position's price) and ``unbooked_fees``
    (its fees not yet in an exit: the open quantity's share of the entry's)."""
    exits_fees = (
        TradeExit.objects.filter(trade=OuterRef("pk"))
        .order_by()
        .values("trade")
        .annotate(total=Sum("fees"))
        .values("total")[:1]
    )
    price = (
        Position.objects.filter(instrument_id=OuterRef("instrument_id"), closed_at__isnull=True)
        .order_by()
        .values("current_price")[:1]
    )
    return (
        strategy_trades(strategy_id)
        .filter(Q(exit_quantity__isnull=True) | Q(exit_quantity__lt=F("entry_quantity")))
        .annotate(
            remaining=F("entry_quantity") - Coalesce(F("exit_quantity"), ZERO),
            price=Subquery(price, output_field=DecimalField()),
            unbooked_fees=F("fees") - Coalesce(Subquery(exits_fees), ZERO),
        )
        .values("remaining", "entry_price", "price", "unbooked_fees", "order__side")
    )


def first_trade_day(strategy_id):
    first = strategy_trades(strategy_id).order_by("entry_date").values_list("entry_date", flat=True)
    first = first.first()
    return first.date() if first else None


def latest_snapshots():
    """Each strategy's newest snapshot."""
    newest = (
        AgentPerformance.objects.filter(strategy=OuterRef("strategy"))
        .order_by("-snapshot_time", "-id")
        .values("id")[:1]
    )
    return AgentPerformance.objects.filter(id=Subquery(newest)).select_related("strategy")


def snapshots():
    return AgentPerformance.objects.order_by("-snapshot_time", "-id")


def snapshot_series(strategy_id):
    return AgentPerformance.objects.filter(strategy_id=strategy_id).order_by("snapshot_time", "id")


PERIODS = {"day": TruncDate, "week": TruncWeek, "month": TruncMonth}


def pnl_by_period(strategy_id, period):
    """[{period_start, net_pnl, fees, exits}] of the strategy's exits per ``period`` (day,
    week from Monday, or month; UTC), oldest first."""
    trunc = PERIODS[period]
    rows = (
        TradeExit.objects.filter(trade__order__decision__strategy_id=strategy_id)
        .annotate(period_start=trunc("exited_at"))
        .values("period_start")
        .annotate(net_pnl=Sum(F("realized_pnl") - F("fees")), fees=Sum("fees"), exits=Count("id"))
        .order_by("period_start")
    )
    return [{**row, "period_start": _day(row["period_start"])} for row in rows]


def _day(value):
    return value.date() if hasattr(value, "date") else value


def performance_by_symbol(strategy_id):
    """Per contract, the strategy's closed trades: how many, their net P&L and fees, best
    first."""
    return list(
        strategy_trades(strategy_id)
        .filter(exit_quantity=F("entry_quantity"))
        .values("instrument_id")
        .annotate(
            num_trades=Count("id"),
            net_pnl=Sum(F("realized_pnl") - F("fees")),
            fees=Sum("fees"),
            symbol=instrument_code("symbol"),
            conid=F("instrument_id"),
        )
        .order_by("-net_pnl", "instrument_id")
    )
