"""Writes for orders, trades and positions: fills, P&L and the position book.

Every change runs inside one transaction with the order, its open trades and the position
locked (``select_for_update``), so two fills of the same contract arriving at once are
applied one after the other.
"""

import functools
import logging
import operator
from collections import defaultdict
from datetime import datetime, time, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import CharField, Count, DecimalField, F, Min, Prefetch, Q, Sum, Value
from django.db.models.functions import Cast, Coalesce, Concat, TruncDate
from django.utils import timezone

from marketdata.models import Code
from marketdata.services import contract_of, price_now
from tradingsite.broker import BrokerError, OrderTicket, get_broker
from tradingsite.decimals import MONEY_PLACES, PRICE_PLACES, plain, quantize, to_decimal
from tradingsite.exceptions import ApplicationError
from tradingsite.money import price_step

from .limits import manual_order_check
from .models import (
    Order,
    OrderExecution,
    OrderRole,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    StrategyPnlDay,
    TimeInForce,
    Trade,
    TradeExit,
    TradingAction,
    TradingActionKind,
    TradingMode,
    TradingSession,
)
from .selectors import account_summary

logger = logging.getLogger(__name__)

TERMINAL_STATUSES = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED})


def _side_sign(side):
    return 1 if side == OrderSide.BUY else -1


def _locked_order(order):
    return Order.objects.select_for_update().get(pk=order.pk)


def _positive(value, *, field):
    number = to_decimal(value, field=field)
    if number <= 0:
        raise ApplicationError(
            f"{field} must be greater than zero.", extra={field: f"{number} is not > 0."}
        )
    return number


@transaction.atomic
def order_status_set(*, order, status, fill_price=None, at=None, reason=None):
    """Move an order to ``status``, refreshing ``updated_at``.

    ``filled`` fills what remains of the order (at ``fill_price``, or the limit price) and so
    creates or closes its trades; a final status (filled, cancelled, rejected) never changes.
    ``reason`` (why IB refused or closed it) is kept in ``error_message``.
    """
    order = _locked_order(order)
    if status not in OrderStatus.values:
        raise ApplicationError(
            "Unknown order status.",
            extra={"status": f"{status!r} is not one of {', '.join(OrderStatus.values)}."},
        )
    if order.status in TERMINAL_STATUSES and status != order.status:
        raise ApplicationError(
            f"Order {order.pk} is already {order.status}.",
            extra={"status": f"A {order.status} order cannot become {status}."},
        )
    if status == OrderStatus.FILLED and order.status != OrderStatus.FILLED:
        price = fill_price if fill_price is not None else order.price
        if price is None:
            raise ApplicationError(
                "A fill needs a price.", extra={"fill_price": "Required for a market order."}
            )
        return order_fill_record(
            order=order, quantity=order.quantity - order.filled_quantity, price=price, at=at
        )
    if status == OrderStatus.PARTIALLY_FILLED:
        raise ApplicationError(
            "Partial fills are recorded with their quantity and price.",
            extra={"status": "Use order_fill_record for partially_filled."},
        )
    order.status = status
    fields = ["status", "updated_at"]
    if status == OrderStatus.CANCELLED:
        order.canceled_at = at or timezone.now()
        fields.append("canceled_at")
    if reason:
        order.error_message = reason
        fields.append("error_message")
    order.save(update_fields=fields)
    if status in (OrderStatus.CANCELLED, OrderStatus.REJECTED) and not order.filled_quantity:
        # An entry that never filled takes its bracket's children with it (IB does the same).
        Order.objects.filter(parent_order=order).exclude(status__in=TERMINAL_STATUSES).update(
            status=OrderStatus.CANCELLED, canceled_at=order.canceled_at or timezone.now(),
            error_message=f"Cancelled with its entry (order {order.pk}), which never filled.",
            updated_at=timezone.now(),
        )  # fmt: skip
    return order


@transaction.atomic
def order_fill_record(*, order, quantity, price, at=None, reported_by_broker=False,
                      exec_id=None, commission=None):  # fmt: skip
    """Apply one fill (execution) of ``order``: its status, its execution row, its trades and
    the position. Returns the order.

    A fill IB reports (``reported_by_broker``, with IB's ``exec_id``) is booked even on an
    order cancelled or rejected here, since IB's word is what happened: a cancel that crossed
    the fill, or an order whose sending was cut off after IB got it. Such an order stays
    cancelled unless the fill completes it. A fill without an execId gets a ``local-`` one.
    """
    return _fill_record(order=order, quantity=quantity, price=price, at=at,
                        reported_by_broker=reported_by_broker, exec_id=exec_id,
                        commission=commission).order  # fmt: skip


def _fill_record(*, order, quantity, price, at, reported_by_broker, exec_id, commission):
    """``order_fill_record``'s work; returns the execution row it wrote."""
    order = _locked_order(order)
    quantity = _positive(quantity, field="quantity")
    price = _positive(price, field="price")
    at = at or timezone.now()
    closed = (OrderStatus.FILLED,) if reported_by_broker else (
        OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.FILLED
    )  # fmt: skip
    if order.status in closed:
        raise ApplicationError(
            f"Order {order.pk} is {order.status}; it cannot be filled.",
            extra={"status": f"A {order.status} order takes no fill."},
        )
    remaining = order.quantity - order.filled_quantity
    if quantity > remaining:
        raise ApplicationError(
            "The fill is larger than what remains of the order.",
            extra={"quantity": f"{quantity} exceeds the remaining {remaining}."},
        )
    filled = order.filled_quantity + quantity
    previous_value = (order.avg_fill_price or 0) * order.filled_quantity
    order.avg_fill_price = quantize((previous_value + price * quantity) / filled, PRICE_PLACES)
    order.filled_quantity = filled
    if filled == order.quantity:
        order.status, order.filled_at = OrderStatus.FILLED, at
    elif order.status != OrderStatus.CANCELLED:
        order.status = OrderStatus.PARTIALLY_FILLED
    order.save(
        update_fields=["avg_fill_price", "filled_quantity", "status", "filled_at", "updated_at"]
    )
    execution = OrderExecution.objects.create(
        exec_id=exec_id or f"local-{order.pk}-{order.executions.count() + 1}",
        order=order,
        side=order.side,
        quantity=quantity,
        price=price,
        commission=commission,
        executed_at=at,
    )
    _ledger_book(execution)
    entry = order if order.role == OrderRole.ENTRY else order.parent_order
    if entry is not None:
        _bracket_resize(entry, at=at)
    elif order.oca_group and order.status == OrderStatus.FILLED:
        _oca_close(order, at=at)
    return execution


def _oca_close(order, *, at):
    """An exit that filled closes the bracket children of its OCA group, as IB cancels them."""
    Order.objects.filter(oca_group=order.oca_group).exclude(pk=order.pk).exclude(
        status__in=TERMINAL_STATUSES
    ).update(
        status=OrderStatus.CANCELLED, canceled_at=at, updated_at=timezone.now(),
        error_message=f"Cancelled by one-cancels-all: the exit (order {order.pk}) filled.",
    )  # fmt: skip


def _bracket_resize(entry, *, at):
    """Keep a bracket's children as IB works them: each covers what its entry has filled
    (all of it once the entry is filled), less what its OCA sibling filled. A child left with
    nothing to do is closed: cancelled by one-cancels-all (IB cancels it too), or filled when
    it had filled its part already."""
    entry.refresh_from_db(fields=["status", "filled_quantity", "quantity"])
    if not entry.filled_quantity:
        return
    children = list(Order.objects.select_for_update().filter(parent_order=entry).order_by("id"))
    covered = entry.quantity if entry.status == OrderStatus.FILLED else entry.filled_quantity
    for child in children:
        if child.status in TERMINAL_STATUSES:
            continue
        siblings = [c for c in children if c.pk != child.pk]
        quantity = max(covered - sum(c.filled_quantity for c in siblings), child.filled_quantity)
        if quantity == child.quantity:
            continue
        if quantity == 0:
            filled = next(c for c in siblings if c.filled_quantity)
            child.status, child.canceled_at = OrderStatus.CANCELLED, at
            child.error_message = (
                f"Cancelled by one-cancels-all: the {filled.get_role_display().lower()} "
                f"(order {filled.pk}) filled."
            )
        else:
            child.quantity = quantity
            if quantity == child.filled_quantity:
                child.status, child.filled_at = OrderStatus.FILLED, at
        child.save(update_fields=["quantity", "status", "canceled_at", "filled_at",
                                  "error_message", "updated_at"])  # fmt: skip


# --- The ledger: trades, exits and positions, a replay of each contract's fills -----------


def _contract_lock(instrument_id):
    """Lock the contract's code row: it serialises fills of different orders of the same
    contract, including the first one, which has no position row to lock yet."""
    list(Code.objects.select_for_update().filter(conid=instrument_id).values_list("pk"))


def _ledger_book(execution):
    """Book a new execution: at the end of its contract's ledger when it is the latest by IB's
    clock, else by re-booking the contract's ledger in IB's order (a fill that arrived late
    must close the lots that were open when it happened, first in, first out)."""
    instrument_id = execution.order.instrument_id
    _contract_lock(instrument_id)
    later = (
        _executions_of(instrument_id)
        .exclude(pk=execution.pk)
        .filter(
            Q(executed_at__gt=execution.executed_at)
            | Q(executed_at=execution.executed_at, exec_id__gt=execution.exec_id)
        )
    )
    if later.exists():
        ledger_rebook(instrument_id=instrument_id)
    else:
        _fees_refresh(Trade.objects.filter(pk__in=_book_fill(execution)))


def _executions_of(instrument_id):
    return OrderExecution.objects.filter(order__instrument_id=instrument_id)


@transaction.atomic
def ledger_rebook(*, instrument_id):
    """Rebuild a contract's trades, exits and positions from its executions, in the order IB
    executed them (execution time, then execId): the result does not depend on the order in
    which the reports arrived. The open position keeps the price it was last marked at."""
    _contract_lock(instrument_id)
    marked = (
        Position.objects.select_for_update()
        .filter(instrument_id=instrument_id, closed_at__isnull=True)
        .values_list("current_price", flat=True)
        .first()
    )
    TradeExit.objects.filter(trade__instrument_id=instrument_id).delete()
    StrategyPnlDay.objects.filter(instrument_id=instrument_id).delete()
    _executions_of(instrument_id).update(trade=None, opened_quantity=0)
    Trade.objects.filter(instrument_id=instrument_id).delete()
    Position.objects.filter(instrument_id=instrument_id).delete()
    executions = _executions_of(instrument_id).select_related("order")
    for execution in executions.order_by("executed_at", "exec_id"):
        _book_fill(execution)
    _fees_refresh(Trade.objects.filter(instrument_id=instrument_id))
    position = Position.objects.filter(instrument_id=instrument_id, closed_at__isnull=True).first()
    if position is not None and marked is not None:
        _mark(position, marked)
        position.save(update_fields=["current_price", "unrealized_pnl", "updated_at"])
    logger.info("ledger of conid %s re-booked in IB's order", instrument_id)


def _book_fill(execution):
    """Close opposite trades first in, first out, then open or extend this order's trade.
    Returns the ids of the trades it touched."""
    order, quantity, price, at = (
        execution.order, execution.quantity, execution.price, execution.executed_at
    )  # fmt: skip
    sign = _side_sign(order.side)
    position = (
        Position.objects.select_for_update()
        .filter(instrument_id=order.instrument_id, closed_at__isnull=True)
        .first()
    )
    held = position.quantity if position else 0
    closing = min(quantity, abs(held)) if held * sign < 0 else 0
    opening = quantity - closing
    touched = []
    if closing:
        touched += _close_trades(execution, quantity=closing)
        position.quantity = held + sign * closing
        if position.quantity == 0:
            position.closed_at = at
            position.unrealized_pnl = 0
        else:  # what is left is the newest lots: their cost, so realized + unrealized add up
            side = OrderSide.BUY if held > 0 else OrderSide.SELL
            position.average_cost = _open_lots_cost(instrument_id=order.instrument_id, side=side)
        _mark(position, price)
        position.save()
        if position.quantity == 0:
            position = None
    if opening:
        touched.append(_open_trade(execution, quantity=opening))
        if position is None:
            position = Position(instrument_id=order.instrument_id, quantity=0, average_cost=price)
        held = abs(position.quantity)
        position.average_cost = quantize(
            (position.average_cost * held + price * opening) / (held + opening), PRICE_PLACES
        )
        position.quantity += sign * opening
        _mark(position, price)
        position.save()
    return touched


def _open_lots(instrument_id):
    """The contract's trades with quantity still open (not exited, or partly)."""
    return Trade.objects.filter(instrument_id=instrument_id).filter(
        Q(exit_quantity__isnull=True) | Q(exit_quantity__lt=F("entry_quantity"))
    )


def _open_lots_cost(*, instrument_id, side):
    """The entry price of the quantity still open in trades of ``side`` on the contract, by
    quantity: the position's average cost once first-in-first-out exits closed its oldest
    lots (seed 000: "calculated considering all entry trades", those still open)."""
    remaining = F("entry_quantity") - Coalesce(F("exit_quantity"), Value(Decimal(0)))
    totals = (
        _open_lots(instrument_id)
        .filter(order__side=side)
        .aggregate(
            cost=Sum(F("entry_price") * remaining, output_field=DecimalField()),
            quantity=Sum(remaining, output_field=DecimalField()),
        )
    )
    return quantize(totals["cost"] / totals["quantity"], PRICE_PLACES)


def _mark(position, price):
    position.current_price = price
    if position.closed_at is None:
        position.unrealized_pnl = quantize(
            (price - position.average_cost) * position.quantity, MONEY_PLACES
        )


def _open_trade(execution, *, quantity):
    """Open a trade with the fill's opening ``quantity``, or extend its order's trade: a second
    partial fill of the same order adds to it while nothing of it is exited. Returns its id."""
    order, price = execution.order, execution.price
    trade = (
        Trade.objects.select_for_update().filter(order=order, exit_quantity__isnull=True).first()
    )
    if trade is None:
        trade = Trade.objects.create(
            order=order,
            instrument_id=order.instrument_id,
            entry_price=price,
            entry_quantity=quantity,
            entry_date=execution.executed_at,
            strategy_id=_strategy_of(order),
        )
    else:
        total = trade.entry_quantity + quantity
        trade.entry_price = quantize(
            (trade.entry_price * trade.entry_quantity + price * quantity) / total, PRICE_PLACES
        )
        trade.entry_quantity = total
        trade.save(update_fields=["entry_price", "entry_quantity", "updated_at"])
    execution.trade, execution.opened_quantity = trade, quantity
    execution.save(update_fields=["trade", "opened_quantity"])
    return trade.pk


def _strategy_of(order):
    """The strategy whose decision placed ``order``; None for a manual order."""
    if order.decision_id is None:
        return None
    # Through the order's relation: orders sit below strategies and import nothing of theirs.
    return Order.objects.filter(pk=order.pk).values_list("decision__strategy_id", flat=True)[0]


def _close_trades(execution, *, quantity):
    """Close ``quantity`` of the opposite open trades, oldest first. Returns their ids."""
    order, price, at = execution.order, execution.price, execution.executed_at
    open_trades = (
        _open_lots(order.instrument_id)
        .select_for_update(of=("self",))
        .select_related("order")
        .exclude(order__side=order.side)
        .order_by("entry_date", "id")
    )
    left = quantity
    closed = []
    for trade in open_trades:
        if not left:
            break
        exited = trade.exit_quantity or 0
        take = min(left, trade.entry_quantity - exited)
        direction = _side_sign(trade.order.side)  # long: exit - entry; short: entry - exit
        pnl = (price - trade.entry_price) * take * direction
        trade.exit_price = quantize(
            ((trade.exit_price or 0) * exited + price * take) / (exited + take), PRICE_PLACES
        )
        trade.exit_quantity = exited + take
        trade.exit_date = at
        before = trade.realized_pnl or 0
        trade.realized_pnl = quantize(before + pnl, MONEY_PLACES)
        trade.save(
            update_fields=["exit_price", "exit_quantity", "exit_date", "realized_pnl", "updated_at"]
        )
        # This exit's share, so that a trade's exits always add up to its realized P&L.
        TradeExit.objects.create(
            trade=trade, execution=execution, quantity=take, price=price,
            realized_pnl=trade.realized_pnl - before, exited_at=at, strategy_id=trade.strategy_id,
        )  # fmt: skip
        closed.append(trade.pk)
        left -= take
    return closed


def _share(amount, part, whole):
    return amount * part / whole if whole else Decimal(0)


def _fees_refresh(trades):
    """Spread the commissions known so far over ``trades`` (a queryset) and their exits.

    A fill's commission is shared by quantity between what it opened and what it closed. A
    trade's ``fees`` is its entry's share plus its exits' shares; an exit's ``fees`` is its own
    share plus its quantity's share of the entry's, so that realized P&L minus fees is what IB
    reports as the exit's realized P&L (IB's average cost includes the commission).
    """
    trades = trades.prefetch_related(
        "entries", Prefetch("exits", queryset=TradeExit.objects.select_related("execution"))
    )
    changed_trades, changed_exits = [], []
    exit_days = defaultdict(set)
    for trade in trades:
        entry = sum(
            (_share(e.commission or 0, e.opened_quantity, e.quantity) for e in trade.entries.all()),
            Decimal(0),
        )
        total = entry
        for exit_ in trade.exits.all():
            fill = exit_.execution
            own = Decimal(0) if fill is None else _share(
                fill.commission or 0, exit_.quantity, fill.quantity
            )  # fmt: skip
            total += own
            exit_days[trade.instrument_id].add(timezone.localdate(exit_.exited_at))
            fees = quantize(own + _share(entry, exit_.quantity, trade.entry_quantity), MONEY_PLACES)
            if fees != exit_.fees:
                exit_.fees = fees
                changed_exits.append(exit_)
        total = quantize(total, MONEY_PLACES)
        if total != trade.fees:
            trade.fees = total
            changed_trades.append(trade)
    Trade.objects.bulk_update(changed_trades, ["fees"])
    TradeExit.objects.bulk_update(changed_exits, ["fees"])
    for instrument_id, days in exit_days.items():
        _pnl_days_refresh(instrument_id=instrument_id, days=days)


ZERO_MONEY = Value(Decimal(0), output_field=DecimalField())
CLOSED = Q(exit_quantity=F("entry_quantity"))


def _on_days(field, days):
    """``field`` within one of ``days`` (UTC), as ranges the column's index can serve."""
    starts = [timezone.make_aware(datetime.combine(day, time.min)) for day in sorted(days)]
    one_day = timedelta(days=1)
    ranges = (Q(**{f"{field}__gte": start, f"{field}__lt": start + one_day}) for start in starts)
    return functools.reduce(operator.or_, ranges)


def _pnl_days_refresh(*, instrument_id, days=None):
    """Count the contract's ``strategy_pnl_days`` rows of ``days`` (every day when None) anew
    from its trades and exits: per strategy and day, the exits' net P&L and fees, and the
    trades closed that day (a trade is closed on the day of its last exit) with their
    counts and sums of net results."""
    # A late commission (execution_apply) comes here without its contract's fills: the lock
    # keeps it from counting the same days as a fill being booked.
    _contract_lock(instrument_id)
    exits = TradeExit.objects.filter(trade__instrument_id=instrument_id, strategy_id__isnull=False)
    closed = Trade.objects.filter(CLOSED, instrument_id=instrument_id, strategy_id__isnull=False)
    stale = StrategyPnlDay.objects.filter(instrument_id=instrument_id)
    if days is not None:
        exits = exits.filter(_on_days("exited_at", days))
        closed = closed.filter(_on_days("exit_date", days), pk__in=exits.values("trade_id"))
        stale = stale.filter(day__in=list(days))
    rows = {}
    for row in (
        exits.annotate(day=TruncDate("exited_at"))
        .values("strategy_id", "day")
        .annotate(
            exits=Count("id"),
            exits_net=Sum(F("realized_pnl") - F("fees")),
            exits_fees=Sum("fees"),
            first_entry=Min("trade__entry_date"),
        )
        .order_by()
    ):
        rows[row["strategy_id"], row["day"]] = StrategyPnlDay(instrument_id=instrument_id, **row)
    net = F("realized_pnl") - F("fees")
    for row in (
        closed.annotate(day=TruncDate("exit_date"), net=net)
        .values("strategy_id", "day")
        .annotate(
            num_trades=Count("id"),
            num_winning_trades=Count("id", filter=Q(net__gt=0)),
            num_losing_trades=Count("id", filter=Q(net__lt=0)),
            gross_profit=Coalesce(Sum("net", filter=Q(net__gt=0)), ZERO_MONEY),
            gross_loss=Coalesce(Sum("net", filter=Q(net__lt=0)), ZERO_MONEY),
            trades_fees=Sum("fees"),
        )
        .order_by()
    ):
        day = rows[row.pop("strategy_id"), row.pop("day")]  # its last exit was that day
        for name, value in row.items():
            setattr(day, name, value)
    stale.delete()
    StrategyPnlDay.objects.bulk_create(rows.values(), batch_size=1000)


@transaction.atomic
def strategy_pnl_days_rebuild():
    """Count every contract's ``strategy_pnl_days`` anew from the trades (after trades were
    written in bulk, as the bench does; the ledger keeps them as it books). Returns how many
    rows there are."""
    StrategyPnlDay.objects.all().delete()
    for instrument_id in (
        Trade.objects.filter(strategy_id__isnull=False).values_list("instrument_id", flat=True)
        .order_by().distinct()
    ):  # fmt: skip
        _pnl_days_refresh(instrument_id=instrument_id)
    return StrategyPnlDay.objects.count()


@transaction.atomic
def position_mark_price(*, conid, price):
    """Refresh the open position's current price and unrealized P&L; None when flat."""
    price = _positive(price, field="price")
    position = (
        Position.objects.select_for_update()
        .filter(instrument_id=conid, closed_at__isnull=True)
        .first()
    )
    if position is None:
        return None
    _mark(position, price)
    position.save(update_fields=["current_price", "unrealized_pnl", "updated_at"])
    return position


# --- The broker side: placing, cancelling, and applying what IB reports -------------------

# IB's order states and ours. Filled is absent on purpose: fills come from executions, which
# carry quantity and price; a status word alone would create trades without them.
IB_STATUS = {
    "PendingSubmit": OrderStatus.SUBMITTED,
    "ApiPending": OrderStatus.SUBMITTED,
    "PreSubmitted": OrderStatus.SUBMITTED,
    "Submitted": OrderStatus.SUBMITTED,
    "Cancelled": OrderStatus.CANCELLED,
    "ApiCancelled": OrderStatus.CANCELLED,
    "Inactive": OrderStatus.REJECTED,
}

ORDER_REF_PREFIX = "ts-"


def _order_ref(order):
    return f"{ORDER_REF_PREFIX}{order.pk}"


def _order_for(*, order_ref, broker_order_id):
    """The order an IB event is about: by our orderRef first, by IB's order id otherwise."""
    if order_ref.startswith(ORDER_REF_PREFIX) and order_ref[len(ORDER_REF_PREFIX) :].isdigit():
        order = Order.objects.filter(pk=int(order_ref[len(ORDER_REF_PREFIX) :])).first()
        if order is not None:
            return order
    if broker_order_id:
        return Order.objects.filter(ibkr_order_id=broker_order_id).order_by("-id").first()
    return None


def trading_mode_check(*, broker):
    """Paper unless TRADING_MODE=live; refuse an order when the gateway's account disagrees.

    IB paper accounts start with "D" (DU..., DF...); the loopback gateway is a paper account.
    The refusals name neither the account nor the gateway's address: they are kept in run
    logs that every signed-in user may read.
    """
    account = broker.account()
    paper_account = account.startswith("D")
    if not account:
        raise ApplicationError(
            "The gateway names no account it is logged in to.",
            extra={"trading_mode": "Orders go only to a gateway logged in to an account."},
        )
    if settings.TRADING_MODE == "paper" and not paper_account:
        raise ApplicationError(
            "TRADING_MODE is paper but the gateway is logged in to a live account.",
            extra={"trading_mode": "Set TRADING_MODE=live to trade a live account."},
        )
    if settings.TRADING_MODE == "live" and paper_account:
        raise ApplicationError(
            "TRADING_MODE is live but the gateway is logged in to a paper account.",
            extra={
                "trading_mode": "Live trading needs a real gateway logged in to a live account."
            },
        )


# The prices each order type needs (IB's: a limit, a stop's trigger in auxPrice, a trailing
# stop's amount or percent).
_NEEDS = {
    OrderType.LMT: ("price",),
    OrderType.MKT: (),
    OrderType.STP: ("stop_price",),
    OrderType.STP_LMT: ("price", "stop_price"),
    OrderType.TRAIL: (),
}
_NAMES = {"price": "a limit price", "stop_price": "a stop price (IB's auxPrice)"}
STOP_TYPES = (OrderType.STP, OrderType.STP_LMT, OrderType.TRAIL)


def _order_fields(*, side, quantity, order_type, tif, price=None, stop_price=None,
                  trailing_amount=None, trailing_percent=None):  # fmt: skip
    """The order's quantity and prices, checked: each price its type needs is there and
    positive, the others are dropped. Returns (quantity, {price fields})."""
    problems = {}
    if side not in OrderSide.values:
        problems["side"] = f"{side!r} is not one of {', '.join(OrderSide.values)}."
    if order_type not in OrderType.values:
        problems["order_type"] = f"{order_type!r} is not one of {', '.join(OrderType.values)}."
    if tif not in TimeInForce.values:
        problems["tif"] = f"{tif!r} is not one of {', '.join(TimeInForce.values)}."
    if problems:
        raise ApplicationError("The order is not valid.", extra=problems)
    quantity = _positive(quantity, field="quantity")
    given = {"price": price, "stop_price": stop_price}
    prices = dict.fromkeys(("price", "stop_price", "trailing_amount", "trailing_percent"))
    for name in _NEEDS[order_type]:
        if given[name] is None:
            raise ApplicationError(
                f"A {order_type} order needs {_NAMES[name]}.",
                extra={name: f"Required for a {order_type} order."},
            )
        prices[name] = _positive(given[name], field=name)
    if order_type == OrderType.TRAIL:
        prices.update(_trailing(trailing_amount, trailing_percent))
    return quantity, prices


def _trailing(amount, percent):
    if (amount is None) == (percent is None):
        raise ApplicationError(
            "A trailing stop (TRAIL) trails by an amount or by a percent.",
            extra={"trailing_amount": "Give trailing_amount or trailing_percent, one of them."},
        )
    if amount is not None:
        return {"trailing_amount": _positive(amount, field="trailing_amount")}
    percent = to_decimal(percent, field="trailing_percent")
    if not 0 < percent < 100:
        raise ApplicationError(
            "The trailing percent must be between 0 and 100.",
            extra={"trailing_percent": f"{percent.normalize():f} is not between 0 and 100 "
                                       "(both excluded)."},
        )  # fmt: skip
    return {"trailing_percent": percent}


def stop_side_check(*, code, side, stop_price, market):
    """A stop's trigger is on the far side of the market: below it for a sell (a long's
    protection), above it for a buy. One on the near side would trigger at once."""
    if stop_price is None or market is None:
        return
    wrong = stop_price >= market if side == OrderSide.SELL else stop_price <= market
    if wrong:
        where, rule = ("above", "below") if side == OrderSide.SELL else ("below", "above")
        raise ApplicationError(
            f"The stop price is on the wrong side of the market for a {side}.",
            extra={"stop_price": f"{plain(stop_price)} is at or {where} {code.symbol}'s price "
                                 f"at IB now ({plain(market)}); a {side.lower()} stop goes "
                                 f"{rule} it, or it triggers at once."},
        )  # fmt: skip


def order_check(
    *, code, side, quantity, order_type=OrderType.LMT, tif=TimeInForce.DAY, price=None,
    stop_price=None, trailing_amount=None, trailing_percent=None,
):  # fmt: skip
    """What a manual order is refused for before IB is asked: its side, type and TIF, each
    price its type needs (a limit order's price, a stop's trigger, a trailing amount or a
    percent between 0 and 100), all positive, and whole shares. The one place of these rules:
    the API's serializer and the admin's form check only the fields' shape, and a form calls
    this to show a refusal at its field before its confirmation screen.

    Returns the prices as the order keeps them: those its type does not use are None.
    """
    quantity, prices = _order_fields(
        side=side, quantity=quantity, order_type=order_type, tif=tif, price=price,
        stop_price=stop_price, trailing_amount=trailing_amount,
        trailing_percent=trailing_percent,
    )  # fmt: skip
    quantity_check(code=code, quantity=quantity)
    return prices


def order_place_manual(*, code, side, quantity, order_type=OrderType.LMT, price=None,
                       tif=TimeInForce.DAY, stop_price=None, trailing_amount=None,
                       trailing_percent=None, broker=None):  # fmt: skip
    """Place an order that no decision stands behind (the API's manual orders).

    It passes ``limits.manual_order_check`` first. The check and the order's row are
    one transaction holding the code's row lock, so two requests at once cannot both pass the
    "one working order per contract" limit; the order goes to IB once that has committed. A
    stop is checked against IB's price now: its trigger must be beyond the market.
    """
    order_check(
        code=code,
        side=side,
        quantity=quantity,
        order_type=order_type,
        tif=tif,
        price=price,
        stop_price=stop_price,
        trailing_amount=trailing_amount,
        trailing_percent=trailing_percent,
    )  # bad input is refused before IB is asked for a price
    market = None
    if order_type == OrderType.MKT or order_type in STOP_TYPES:  # cost at IB's price now
        broker = broker or get_broker()
        market = price_now(code=code, broker=broker).price
        stop_side_check(code=code, side=side, stop_price=stop_price, market=market)
    with transaction.atomic():
        Code.objects.select_for_update().filter(pk=code.pk).first()
        manual_order_check(
            code=code, side=side, quantity=quantity,
            price=price if order_type in (OrderType.LMT, OrderType.STP_LMT) else None,
            market_price=market, account=lambda: account_summary(broker=broker or get_broker()),
        )  # fmt: skip
        broker = broker or get_broker()
        order = _order_write(code=code, side=side, quantity=quantity, order_type=order_type,
                             price=price, stop_price=stop_price, trailing_amount=trailing_amount,
                             trailing_percent=trailing_percent, tif=tif, decision=None,
                             broker=broker)  # fmt: skip
    return _order_send(order, broker=broker)


def order_place(
    *, code, side, quantity, order_type=OrderType.LMT, price=None, tif=TimeInForce.DAY,
    decision=None, broker=None, stop_price=None, role=None,
):  # fmt: skip
    """Send an order to IB and store it with IB's order id.

    The row is written first and its id travels to IB as ``orderRef``: if the process dies
    between the two, the reconcile task still ties IB's order and executions to this row.
    """
    broker = broker or get_broker()
    order = _order_write(code=code, side=side, quantity=quantity, order_type=order_type,
                         price=price, stop_price=stop_price, tif=tif, decision=decision,
                         broker=broker, role=role)  # fmt: skip
    return _order_send(order, broker=broker)


def bracket_place(*, decision, side, quantity, entry_price, target_price, stop_loss,
                  entry_type=OrderType.LMT, tif=TimeInForce.DAY, broker=None):  # fmt: skip
    """An approved decision as IB's bracket: the entry (LMT at ``entry_price``, or MKT), a
    take-profit LMT at ``target_price`` and a protective STP at ``stop_loss``, both for the
    entry's quantity on the other side. The children are rows of their own, linked to the
    entry (``parent_order``) and to the decision, in one OCA group; IB holds them until the
    entry fills. They are GTC: a position must not lose its stop at the close.

    Prices are put on IB's steps so as never to take more risk or less reward than decided:
    the take profit of a long rounds up, its stop up (nearer the entry); a short's down.
    The three rows are written in one transaction, then sent at once (the last transmits the
    group); when IB refuses any, all three are rejected with its reason and nothing works.
    """
    broker = broker or get_broker()
    exit_side = OrderSide.SELL if side == OrderSide.BUY else OrderSide.BUY
    code = decision.code
    with transaction.atomic():
        entry = _order_write(
            code=code, side=side, quantity=quantity, order_type=entry_type,
            price=entry_price if entry_type == OrderType.LMT else None, tif=tif,
            decision=decision, broker=broker, role=OrderRole.ENTRY,
        )  # fmt: skip
        oca_group = f"{ORDER_REF_PREFIX}oca-{entry.pk}"
        children = [
            _order_write(
                code=code,
                side=exit_side,
                quantity=quantity,
                order_type=order_type,
                tif=TimeInForce.GTC,
                decision=decision,
                broker=None,
                role=role,
                parent=entry,
                oca_group=oca_group,
                **prices,
            )  # fmt: skip
            for role, order_type, prices in (
                (OrderRole.TAKE_PROFIT, OrderType.LMT, {"price": target_price}),
                (OrderRole.STOP_LOSS, OrderType.STP, {"stop_price": stop_loss}),
            )
        ]
    orders = [entry, *children]
    try:
        ids = broker.place_bracket(
            contract=contract_of(code),
            entry=_ticket(entry),
            children=[_ticket(child) for child in children],
            oca_group=oca_group,
        )
    except BrokerError as exc:
        Order.objects.filter(pk__in=[o.pk for o in orders], status=OrderStatus.SUBMITTED).update(
            status=OrderStatus.REJECTED, error_message=str(exc), updated_at=timezone.now()
        )
        raise
    for order, broker_order_id in zip(orders, ids, strict=True):
        Order.objects.filter(pk=order.pk).update(
            ibkr_order_id=broker_order_id, submitted_at=Coalesce("submitted_at", timezone.now())
        )
        order.refresh_from_db()
    return entry


def _on_tick(price, *, side, code, rounded, field="price"):
    """A price on IB's steps: a decision's is rounded so that it never pays more (a buy
    rounds down, a sell up); a price someone typed is refused, naming the step."""
    tick = (
        None if price is None
        else price_step(sec_type=code.sec_type, currency=code.currency, price=price)
    )  # fmt: skip
    if tick is None or price % tick == 0:
        return price
    if not rounded:
        raise ApplicationError(
            "The price is not one IB takes.",
            extra={field: f"{price.normalize():f} is not a multiple of {tick}, IB's price "
                          f"step for {code.symbol} at this price."},
        )  # fmt: skip
    on_tick = price.quantize(tick, rounding=ROUND_FLOOR if side == OrderSide.BUY else ROUND_CEILING)
    return on_tick if on_tick > 0 else tick


#: Security types IB trades in fractions through the API (currencies, crypto); stocks and
#: ETFs go in whole shares (IB's fractional shares are not open to API orders by default).
FRACTIONAL_SEC_TYPES = frozenset(["CASH", "CRYPTO"])


def quantity_check(*, code, quantity):
    """Whole shares unless the contract trades in fractions."""
    if quantity != quantity.to_integral_value() and code.sec_type not in FRACTIONAL_SEC_TYPES:
        raise ApplicationError(
            "The quantity is not a whole number of shares.",
            extra={"quantity": f"{quantity.normalize():f} is not a whole number: "
                               f"{code.symbol} ({code.sec_type}) trades in whole shares."},
        )  # fmt: skip


def _order_write(*, code, side, quantity, order_type, tif, decision, broker, price=None,
                 stop_price=None, trailing_amount=None, trailing_percent=None, role=None,
                 parent=None, oca_group=None):  # fmt: skip
    """The order's row, checked (``broker``, when given, is asked whether its account is the
    trading mode's; a bracket's children are checked with their entry)."""
    quantity, prices = _order_fields(
        side=side, quantity=quantity, order_type=order_type, tif=tif, price=price,
        stop_price=stop_price, trailing_amount=trailing_amount,
        trailing_percent=trailing_percent,
    )  # fmt: skip
    quantity_check(code=code, quantity=quantity)
    rounded = decision is not None
    for field in ("price", "stop_price", "trailing_amount"):
        prices[field] = _on_tick(prices[field], side=side, code=code, rounded=rounded,
                                 field=field)  # fmt: skip
    if (
        decision is not None
        and parent is None
        and Order.objects.filter(decision=decision, parent_order__isnull=True).exists()
    ):
        raise ApplicationError(
            f"Decision {decision.pk} already has an order.",
            extra={"decision_id": "A decision is sent to the broker once."},
        )
    if broker is not None:
        trading_mode_check(broker=broker)
    return Order.objects.create(
        decision=decision,
        instrument=code,
        side=side,
        quantity=quantity,
        order_type=order_type,
        tif=tif,
        status=OrderStatus.SUBMITTED,
        role=role,
        parent_order=parent,
        oca_group=oca_group,
        **prices,
    )


def _ticket(order):
    return OrderTicket(
        side=order.side,
        quantity=order.quantity,
        order_type=order.order_type,
        order_ref=_order_ref(order),
        tif=order.tif,
        price=order.price,
        stop_price=order.stop_price,
        trailing_amount=order.trailing_amount,
        trailing_percent=order.trailing_percent,
        # an exit cancels the bracket it joins when it fills; children reduce each other
        oca_group=order.oca_group or "",
        oca_type=1 if order.role == OrderRole.EXIT else 2,
    )


def _order_send(order, *, broker):
    """Send the order's row to IB; it stays ``submitted`` only once IB acknowledged it.

    Anything else (IB refused it, did not acknowledge it in time, the gateway cannot be
    reached or dropped the connection) leaves it ``rejected`` with the reason, and the caller
    gets the BrokerError in the same call."""
    try:
        broker_order_id = broker.place_order(
            contract=contract_of(order.instrument), ticket=_ticket(order)
        )
    except BrokerError as exc:
        Order.objects.filter(pk=order.pk, status=OrderStatus.SUBMITTED).update(
            status=OrderStatus.REJECTED, error_message=str(exc), updated_at=timezone.now()
        )
        raise
    Order.objects.filter(pk=order.pk).update(
        ibkr_order_id=broker_order_id, submitted_at=Coalesce("submitted_at", timezone.now())
    )
    order.refresh_from_db()
    return order


def _exit_groups(instrument_id):
    """{OCA group: quantity it still protects} of the working bracket children on a contract,
    oldest bracket first: an exit joins each group for that quantity, so that IB cancels the
    children the moment it fills (only the client that placed an order may cancel it, and a
    bracket is often placed by a worker)."""
    groups = {}
    children = Order.objects.filter(
        instrument_id=instrument_id, parent_order__isnull=False,
        status__in=(OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED),
    ).order_by("parent_order_id", "id")  # fmt: skip
    for child in children:
        left = child.quantity - child.filled_quantity
        groups[child.oca_group] = max(groups.get(child.oca_group, Decimal(0)), left)
    return groups


def position_exit(*, code, order_type=OrderType.MKT, price=None, tif=TimeInForce.DAY,
                  decision=None, broker=None):  # fmt: skip
    """Close the open position in ``code``: one exit per bracket protecting it, each in its
    bracket's OCA group (IB cancels the bracket's children when it fills), and one for what no
    bracket covers. Returns the exit orders (the first is the decision's, when one is given).
    A position already flat is refused, naming it; nothing is sent."""
    position = Position.objects.filter(instrument_id=code.conid, closed_at__isnull=True).first()
    if position is None or position.quantity == 0:
        raise ApplicationError(
            f"The position in {code.symbol} is already flat.",
            extra={"position": f"No open position in {code.symbol}: nothing to close."},
        )
    broker = broker or get_broker()
    held = abs(position.quantity)
    side = OrderSide.SELL if position.quantity > 0 else OrderSide.BUY
    parts = []
    for group, quantity in _exit_groups(code.conid).items():
        take = min(quantity, held - sum(q for _, q in parts))
        if take > 0:
            parts.append((group, take))
    rest = held - sum(q for _, q in parts)
    if rest > 0:
        parts.append((None, rest))
    exits = []
    for number, (group, quantity) in enumerate(parts):
        order = _order_write(
            code=code, side=side, quantity=quantity, order_type=order_type, price=price,
            tif=tif, decision=decision if number == 0 else None, broker=broker,
            role=OrderRole.EXIT, oca_group=group,
        )  # fmt: skip
        exits.append(_order_send(order, broker=broker))
    return exits


def actor_name(user):
    return getattr(user, "get_username", lambda: None)() or (str(user) if user else None)


def position_close(*, position, user=None, broker=None):
    """Close one position at market (the admin's and the API's button, the command), recorded
    with who and when. Its bracket children are cancelled by IB as the exit fills."""
    position.refresh_from_db()
    code = Code.objects.filter(conid=position.instrument_id).first()
    if position.closed_at is not None or position.quantity == 0 or code is None:
        when = f" at {position.closed_at:%Y-%m-%d %H:%M} UTC" if position.closed_at else ""
        raise ApplicationError(
            "The position is already flat.",
            extra={"position": f"Position {position.pk} was closed{when}: nothing to close."},
        )
    exits = position_exit(code=code, broker=broker)
    TradingAction.objects.create(
        kind=TradingActionKind.CLOSE_POSITION, user=actor_name(user), position=position,
        order=exits[0],
        detail=f"Closed {position.quantity:f} {code.symbol} at market: order(s) "
        f"{', '.join(str(o.pk) for o in exits)}.",
    )  # fmt: skip
    return exits


def order_cancel(*, order, broker=None, user=None):
    """Ask IB to cancel ``order``; an order IB never got is cancelled here at once. With a
    ``user`` (a person's cancel, from the admin, the API or the command), it is recorded.

    An order without IB's id may still be at IB: its sending can be cut off after IB got it
    and before the id was saved. IB is asked for the order by its orderRef first.
    """
    order = _order_cancel(order=order, broker=broker)
    if user is not None:
        TradingAction.objects.create(
            kind=TradingActionKind.CANCEL_ORDER, user=actor_name(user), order=order,
            detail=f"Asked IB to cancel order {order.pk}; it is {order.status}.",
        )  # fmt: skip
    return order


def _order_cancel(*, order, broker=None):
    order.refresh_from_db()
    if order.status in TERMINAL_STATUSES:
        raise ApplicationError(
            f"Order {order.pk} is already {order.status}.",
            extra={"status": f"A {order.status} order cannot be cancelled."},
        )
    broker = broker or get_broker()
    if order.ibkr_order_id is None:
        reference = _order_ref(order)
        for status in broker.order_statuses():
            if status.order_ref == reference:
                order = order_status_apply(status=status)  # records IB's id, or IB's own end
                break
        if order.status in TERMINAL_STATUSES:
            return order
        if order.ibkr_order_id is None:  # IB never got it
            return order_status_set(order=order, status=OrderStatus.CANCELLED)
    broker.cancel_order(broker_order_id=order.ibkr_order_id)
    broker.wait(0.2)  # IB confirms with an orderStatus event, applied by the listener
    order.refresh_from_db()
    return order


def execution_apply(*, report):
    """Apply one IB execution once: a replayed execId changes nothing, except that a
    commission reported after the fill is recorded and spread over the trades it touched."""
    order = _order_for(order_ref=report.order_ref, broker_order_id=report.broker_order_id)
    if order is None:
        logger.warning("execution %s matches no order here; left alone", report.exec_id)
        return None
    with transaction.atomic():
        order = _locked_order(order)
        known = OrderExecution.objects.filter(exec_id=report.exec_id).first()
        if known is not None:
            if known.commission is None and report.commission is not None:
                known.commission = report.commission
                known.save(update_fields=["commission"])
                _fees_refresh(
                    Trade.objects.filter(Q(entries=known) | Q(exits__execution=known)).distinct()
                )
            return known
        execution = _fill_record(
            order=order,
            quantity=report.quantity,
            price=report.price,
            at=report.time,
            reported_by_broker=True,
            exec_id=report.exec_id,
            commission=report.commission,
        )
        _broker_id_record(order, report.broker_order_id)
        return execution


def _broker_id_record(order, broker_order_id):
    """IB's id for an order whose sending was cut off before the id was saved."""
    if order.ibkr_order_id is None and broker_order_id:
        Order.objects.filter(pk=order.pk, ibkr_order_id__isnull=True).update(
            ibkr_order_id=broker_order_id, submitted_at=Coalesce("submitted_at", timezone.now())
        )
        order.ibkr_order_id = broker_order_id


def order_status_apply(*, status):
    """Apply IB's word on an order: cancelled and rejected are final; fills come as executions."""
    order = _order_for(order_ref=status.order_ref, broker_order_id=status.broker_order_id)
    if order is None:
        return None
    _broker_id_record(order, status.broker_order_id)
    target = IB_STATUS.get(status.status)
    if target in (OrderStatus.CANCELLED, OrderStatus.REJECTED) and order.status not in (
        TERMINAL_STATUSES
    ):
        return order_status_set(order=order, status=target, reason=status.message or None)
    return order


def orders_reconcile(*, broker=None):
    """Catch up with IB after a restart: executions first (they carry fills), then statuses."""
    broker = broker or get_broker()
    before = OrderExecution.objects.count()
    refused = 0
    for report in sorted(broker.executions(), key=lambda r: (r.time, r.exec_id)):
        try:
            execution_apply(report=report)
        except ApplicationError as error:  # one report must not hold up the others
            refused += 1
            logger.error("execution %s of IB order %s refused: %s", report.exec_id,
                         report.broker_order_id, error)  # fmt: skip
    changed = 0
    statuses = broker.order_statuses()
    for status in statuses:
        order = _order_for(order_ref=status.order_ref, broker_order_id=status.broker_order_id)
        old = order.status if order else None
        try:
            order = order_status_apply(status=status)
        except ApplicationError as error:
            refused += 1
            logger.error("status of IB order %s refused: %s", status.broker_order_id, error)
            continue
        changed += bool(order and order.status != old)
    known = {status.order_ref for status in statuses}
    changed += _unacknowledged_close(known=known)
    changed += _unknown_working_close(known=known)
    return {
        "executions_applied": OrderExecution.objects.count() - before,
        "statuses_changed": changed,
        "reports_refused": refused,
    }


def _unknown_to_ib(*, known, now, **conditions):
    """Orders matching ``conditions``, sent longer ago than IB has to acknowledge one, whose
    orderRef is not among those IB reports (``known``)."""
    waited = settings.IBKR_ORDER_ACK_TIMEOUT + settings.IBKR_REQUEST_TIMEOUT
    return (
        Order.objects.filter(created_at__lt=now - timedelta(seconds=waited), **conditions)
        .annotate(ref=Concat(Value(ORDER_REF_PREFIX), Cast("pk", CharField())))
        .exclude(ref__in=known)
    )


def _unacknowledged_close(*, known):
    """Reject the orders whose sending stopped before IB acknowledged them (the process died
    in between) and that IB does not know by their orderRef: nothing works them, and a row
    left ``submitted`` would block its contract and claim an order IB never had."""
    now = timezone.now()
    return _unknown_to_ib(
        known=known, now=now, status=OrderStatus.SUBMITTED, ibkr_order_id__isnull=True,
        filled_quantity=0,
    ).update(
        status=OrderStatus.REJECTED,
        error_message="IB never acknowledged this order and does not know it: the process "
        "sending it stopped first (closed by the reconcile).",
        updated_at=now,
    )  # fmt: skip


def _unknown_working_close(*, known):
    """Close the working orders IB acknowledged once but no longer knows (neither among its
    open orders nor among those completed today: a DAY order of an earlier day, or a gateway
    that lost its book): nothing works them at IB, and a row left working here would block its
    contract for manual orders with no way to cancel it. Their fills so far stay booked."""
    now = timezone.now()
    return _unknown_to_ib(
        known=known, now=now, ibkr_order_id__isnull=False,
        status__in=(OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED),
    ).update(
        status=OrderStatus.CANCELLED,
        canceled_at=now,
        error_message="IB does not know this order any more (not among its open orders nor "
        "those completed today): closed here by the reconcile.",
        updated_at=now,
    )  # fmt: skip


class OrderEventListener:
    """Applies IB's order events (and the prices of streamed contracts) as they arrive on the
    connection."""

    def execution(self, report):
        execution_apply(report=report)

    def order_status(self, status):
        order_status_apply(status=status)

    def price(self, report):
        position_mark_price(conid=report.conid, price=report.price)


# --- Trading sessions (seed 003) ----------------------------------------------------------

CENTS = Decimal("0.01")


def trading_session_start_check(*, session_name, trading_mode=None):
    """What starting a session is refused for (an unknown mode, no name, another session
    active in that mode), so that a form can show it at its field; returns the mode (the
    site's by default)."""
    trading_mode = trading_mode or settings.TRADING_MODE
    if trading_mode not in TradingMode.values:
        raise ApplicationError(
            "Unknown trading mode.",
            extra={"trading_mode": f"{trading_mode!r} is not one of paper, live."},
        )
    if not (session_name or "").strip():
        raise ApplicationError("A session needs a name.", extra={"session_name": "Required."})
    active = TradingSession.objects.filter(trading_mode=trading_mode, is_active=True).first()
    if active is not None:
        raise ApplicationError(
            f"Session {active.session_name!r} is active in {trading_mode} trading.",
            extra={"trading_mode": f"End session {active.pk} ({active.session_name}) first: "
                                   "one active session per trading mode."},
        )  # fmt: skip
    return trading_mode


def trading_session_start(*, session_name, trading_mode=None, starting_balance=None,
                          notes="", broker=None):  # fmt: skip
    """Start a session in ``trading_mode`` (the site's by default). Refused while another is
    active in that mode (``trading_session_start_check``). Its starting balance is the one
    given, else IB's net liquidation when the gateway answers, else empty."""
    trading_mode = trading_session_start_check(session_name=session_name, trading_mode=trading_mode)
    if starting_balance is None:
        try:
            starting_balance = account_summary(broker=broker).net_liquidation
        except BrokerError:
            starting_balance = None
    return TradingSession.objects.create(
        session_name=session_name.strip(), trading_mode=trading_mode, notes=notes or "",
        starting_balance=starting_balance,
    )  # fmt: skip


def trading_session_refresh(*, session, until=None):
    """The session's figures from the exits and fills within it: trades with an exit in it
    (won or lost by their exits' P&L net of fees in it), total P&L net of fees, the fills'
    commissions, win rate, ending balance and the largest drawdown of the balance."""
    end = session.ended_at or until or timezone.now()
    # Booked within it (created_at: the fills of a simulated market carry its own clock)
    exits = TradeExit.objects.filter(created_at__gte=session.started_at, created_at__lte=end)
    per_trade = {}
    curve = []
    for exit_ in exits.order_by("exited_at", "id"):
        net = exit_.realized_pnl - exit_.fees
        per_trade[exit_.trade_id] = per_trade.get(exit_.trade_id, Decimal(0)) + net
        curve.append(net)
    total = sum(curve, Decimal(0))
    commission = OrderExecution.objects.filter(
        created_at__gte=session.started_at, created_at__lte=end
    ).aggregate(total=Sum("commission"))["total"] or Decimal(0)
    session.total_trades = len(per_trade)
    session.winning_trades = sum(1 for v in per_trade.values() if v > 0)
    session.losing_trades = sum(1 for v in per_trade.values() if v < 0)
    session.total_pnl = quantize(total, CENTS)
    session.total_commission = quantize(commission, CENTS)
    session.win_rate = (
        quantize(Decimal(100) * session.winning_trades / session.total_trades, CENTS)
        if session.total_trades else None
    )  # fmt: skip
    balance = session.starting_balance
    session.ending_balance = None if balance is None else quantize(balance + total, CENTS)
    session.max_drawdown = None
    if balance is not None and balance > 0:
        peak, worst, value = balance, Decimal(0), balance
        for net in curve:
            value += net
            peak = max(peak, value)
            worst = max(worst, (peak - value) / peak * 100)
        session.max_drawdown = quantize(worst, Decimal("0.0001"))
    session.save()
    return session


@transaction.atomic
def trading_session_end(*, session, notes=None):
    """End an active session: its figures are computed a last time and kept."""
    session = TradingSession.objects.select_for_update().get(pk=session.pk)
    if not session.is_active:
        when = f" at {session.ended_at:%Y-%m-%d %H:%M} UTC" if session.ended_at else ""
        raise ApplicationError(
            f"Session {session.pk} has ended already.",
            extra={"is_active": f"It ended{when}; start a new one."},
        )
    session.ended_at, session.is_active = timezone.now(), False
    if notes:
        session.notes = notes
    return trading_session_refresh(session=session)
