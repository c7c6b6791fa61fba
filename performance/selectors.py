"""Reads of a strategy's trades for its performance figures, and of its snapshots."""

from collections import defaultdict

from django.db.models import DecimalField, F, Min, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncDay, TruncMonth, TruncWeek

from marketdata.models import Code
from orders.models import Order, Position, StrategyPnlDay, Trade, TradeExit

from .models import AgentPerformance

ZERO = Value(0, output_field=DecimalField())


def strategy_trades(strategy_id):
    """The trades a strategy's decisions opened (a manual order's trades have no strategy)."""
    return Trade.objects.filter(strategy_id=strategy_id)


def _of(queryset, strategy_ids):
    """``queryset`` narrowed to the trades (or exits) of ``strategy_ids``: one strategy's, or
    every strategy's with None (a manual order's are nobody's)."""
    if strategy_ids is None:
        return queryset.filter(strategy_id__isnull=False)
    return queryset.filter(strategy_id__in=list(strategy_ids))


TOTALS = ("num_trades", "num_winning_trades", "num_losing_trades", "gross_profit", "gross_loss",
          "fees")  # fmt: skip


def closed_trade_totals(strategy_ids=None):
    """({strategy_id: totals}, {strategy_id: [totals of one contract]}) from one query over
    the strategies' days (``strategy_pnl_days``, which the ledger keeps as it books): per
    strategy and contract, the closed trades' counts and sums of net results (realized P&L
    minus fees; gross_loss is negative) and fees, and the first entry of a trade with an exit;
    a strategy's totals are its contracts' added up (exact: NUMERIC sums)."""
    rows = (
        _of(StrategyPnlDay.objects, strategy_ids)
        .values("strategy_id", "instrument_id")
        .annotate(
            first_entry=Min("first_entry"),
            num_trades=Sum("num_trades"),
            num_winning_trades=Sum("num_winning_trades"),
            num_losing_trades=Sum("num_losing_trades"),
            gross_profit=Sum("gross_profit"),
            gross_loss=Sum("gross_loss"),
            fees=Sum("trades_fees"),
        )
        .order_by()
    )
    totals, by_contract = {}, defaultdict(list)
    for row in rows:
        strategy_id = row.pop("strategy_id")
        by_contract[strategy_id].append(row)
        total = totals.setdefault(strategy_id, {**dict.fromkeys(TOTALS, 0), "first_entry": None})
        for name in TOTALS:
            total[name] += row[name]
        if total["first_entry"] is None or row["first_entry"] < total["first_entry"]:
            total["first_entry"] = row["first_entry"]
    return totals, by_contract


def by_symbol(contracts):
    """Per contract with closed trades (freqtrade's ``/performance``): how many, their net
    P&L and fees, best first; ``contracts`` from ``closed_trade_totals``."""
    symbols = dict(
        Code.objects.filter(conid__in=[row["instrument_id"] for row in contracts]).values_list(
            "conid", "symbol"
        )
    )
    rows = [
        {
            "conid": row["instrument_id"],
            "symbol": symbols.get(row["instrument_id"]),
            "num_trades": row["num_trades"],
            "net_pnl": row["gross_profit"] + row["gross_loss"],
            "fees": row["fees"],
        }
        for row in contracts
        if row["num_trades"]
    ]
    return sorted(rows, key=lambda row: (-row["net_pnl"], row["conid"]))


def realized_by_day(strategy_ids=None):
    """{strategy_id: {day (UTC): net realized P&L of the exits that day}} in one query."""
    rows = (
        _of(StrategyPnlDay.objects, strategy_ids)
        .values("strategy_id", "day")
        .annotate(net=Sum("exits_net"))
        .order_by("strategy_id", "day")
        .values_list("strategy_id", "day", "net")
    )
    days = defaultdict(dict)
    for strategy_id, day, net in rows:
        days[strategy_id][day] = net
    return days


def open_trades(strategy_ids=None):
    """{strategy_id: [trade]}: the trades with quantity still open, each with ``remaining``,
    ``side``, ``entry_date``, ``entry_price``, ``price`` (its contract's open position's
    price) and ``unbooked_fees`` (its fees not yet in an exit: the open quantity's share of
    the entry's)."""
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
    # Their ids first, through the partial index of open trades: the planner cannot tell
    # how few they are (it guesses a third of the strategy's trades), and would plan the
    # subqueries below, and compile them (PostgreSQL's JIT), for tens of thousands of rows.
    ids = list(
        _of(Trade.objects, strategy_ids)
        .filter(Q(exit_quantity__isnull=True) | Q(exit_quantity__lt=F("entry_quantity")))
        .order_by()
        .values_list("pk", flat=True)
    )
    rows = (
        Trade.objects.filter(pk__in=ids)
        .order_by()
        .annotate(
            remaining=F("entry_quantity") - Coalesce(F("exit_quantity"), ZERO),
            price=Subquery(price, output_field=DecimalField()),
            unbooked_fees=F("fees") - Coalesce(Subquery(exits_fees), ZERO),
            # A subquery, not a join: the few open trades look their order up by its key
            # rather than the planner hashing every order.
            side=Subquery(Order.objects.filter(pk=OuterRef("order_id")).values("side")[:1]),
        )
        .values(
            "remaining",
            "entry_date",
            "entry_price",
            "price",
            "unbooked_fees",
            "side",
            "strategy_id",
        )  # fmt: skip
    )
    trades = defaultdict(list)
    for row in rows:
        trades[row.pop("strategy_id")].append(row)
    return trades


def latest_snapshots():
    """Each strategy's newest snapshot."""
    newest = (
        AgentPerformance.objects.filter(strategy=OuterRef("strategy"))
        .order_by("-snapshot_time", "-id")
        .values("id")[:1]
    )
    return AgentPerformance.objects.filter(id=Subquery(newest)).select_related("strategy")


def latest_snapshot_of(strategy_ids):
    """{strategy_id: its newest snapshot} of ``strategy_ids``."""
    return {
        row.strategy_id: row
        for row in latest_snapshots().filter(strategy_id__in=list(strategy_ids))
    }


def snapshots():
    return AgentPerformance.objects.order_by("-snapshot_time", "-id")


def snapshot_series(strategy_id):
    return AgentPerformance.objects.filter(strategy_id=strategy_id).order_by("snapshot_time", "id")


PERIODS = {"day": TruncDay, "week": TruncWeek, "month": TruncMonth}


def pnl_by_period(strategy_id, period):
    """[{period_start, net_pnl, fees, exits}] of the strategy's exits per ``period`` (day,
    week from Monday, or month; UTC), oldest first, from its days' rows."""
    trunc = PERIODS[period]
    rows = (
        StrategyPnlDay.objects.filter(strategy_id=strategy_id)
        .annotate(period_start=trunc("day"))
        .values("period_start")
        .annotate(net_pnl=Sum("exits_net"), fees=Sum("exits_fees"), exits=Sum("exits"))
        .order_by("period_start")
    )
    return [{**row, "period_start": _day(row["period_start"])} for row in rows]


def _day(value):
    return value.date() if hasattr(value, "date") else value
