"""Writes for orders, trades and positions: fills, P&L and the position book.

Every change runs inside one transaction with the order, its open trades and the position
locked (``select_for_update``), so two fills of the same contract arriving at once are
applied one after the other.
"""

import logging
from datetime import timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import CharField, DecimalField, F, Prefetch, Q, Sum, Value
from django.db.models.functions import Cast, Coalesce, Concat
from django.utils import timezone

from marketdata.models import Code
from marketdata.services import contract_of, price_now
from tradingsite.broker import BrokerError, get_broker
from tradingsite.decimals import MONEY_PLACES, PRICE_PLACES, quantize, to_decimal
from tradingsite.exceptions import ApplicationError

from .limits import manual_order_check
from .models import (
    Order,
    OrderExecution,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    TimeInForce,
    Trade,
    TradeExit,
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
    return execution


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
            realized_pnl=trade.realized_pnl - before, exited_at=at,
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


def _order_fields(*, side, quantity, order_type, price, tif):
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
    if order_type == OrderType.LMT:
        price = _positive(price, field="price")
    else:
        price = None
    return quantity, price


def manual_order_place(*, code, side, quantity, order_type=OrderType.LMT, price=None,
                       tif=TimeInForce.DAY, broker=None):  # fmt: skip
    """Place an order that no decision stands behind (the API's manual orders).

    It passes ``limits.manual_order_check`` first. The check and the order's row are
    one transaction holding the code's row lock, so two requests at once cannot both pass the
    "one working order per contract" limit; the order goes to IB once that has committed.
    """
    market = None
    if order_type == OrderType.MKT:  # its cost is checked at IB's price now, a limit's at it
        broker = broker or get_broker()
        market = price_now(code=code, broker=broker).price
    with transaction.atomic():
        Code.objects.select_for_update().filter(pk=code.pk).first()
        manual_order_check(
            code=code, side=side, quantity=quantity, price=price, market_price=market,
            account=lambda: account_summary(broker=broker or get_broker()),
        )  # fmt: skip
        broker = broker or get_broker()
        order = _order_write(code=code, side=side, quantity=quantity, order_type=order_type,
                             price=price, tif=tif, decision=None, broker=broker)  # fmt: skip
    return _order_send(order, broker=broker)


def order_place(
    *, code, side, quantity, order_type=OrderType.LMT, price=None, tif=TimeInForce.DAY,
    decision=None, broker=None,
):  # fmt: skip
    """Send an order to IB and store it with IB's order id.

    The row is written first and its id travels to IB as ``orderRef``: if the process dies
    between the two, the reconcile task still ties IB's order and executions to this row.
    """
    broker = broker or get_broker()
    order = _order_write(code=code, side=side, quantity=quantity, order_type=order_type,
                         price=price, tif=tif, decision=decision, broker=broker)  # fmt: skip
    return _order_send(order, broker=broker)


def price_tick(*, code, price):
    """IB's smallest step of a limit price for ``code`` at ``price``, where it is known: US
    stocks move by a cent from $1 up and by a hundredth of a cent below (IB refuses other
    prices with error 110). None for other contracts, whose steps vary."""
    if code.sec_type != "STK" or code.currency != "USD":
        return None
    return Decimal("0.01") if price >= 1 else Decimal("0.0001")


def _on_tick(price, *, side, code, rounded):
    """A limit price on IB's steps: a decision's is rounded so that it never pays more (a buy
    rounds down, a sell up); a price someone typed is refused, naming the step."""
    tick = None if price is None else price_tick(code=code, price=price)
    if tick is None or price % tick == 0:
        return price
    if not rounded:
        raise ApplicationError(
            "The limit price is not one IB takes.",
            extra={"price": f"{price.normalize():f} is not a multiple of {tick}, IB's price "
                            f"step for {code.symbol} at this price."},
        )  # fmt: skip
    on_tick = price.quantize(tick, rounding=ROUND_FLOOR if side == OrderSide.BUY else ROUND_CEILING)
    return on_tick if on_tick > 0 else tick


def _order_write(*, code, side, quantity, order_type, price, tif, decision, broker):
    quantity, price = _order_fields(
        side=side, quantity=quantity, order_type=order_type, price=price, tif=tif
    )
    price = _on_tick(price, side=side, code=code, rounded=decision is not None)
    if decision is not None and Order.objects.filter(decision=decision).exists():
        raise ApplicationError(
            f"Decision {decision.pk} already has an order.",
            extra={"decision_id": "A decision is sent to the broker once."},
        )
    trading_mode_check(broker=broker)
    return Order.objects.create(
        decision=decision,
        instrument=code,
        side=side,
        quantity=quantity,
        price=price,
        order_type=order_type,
        tif=tif,
        status=OrderStatus.SUBMITTED,
    )


def _order_send(order, *, broker):
    """Send the order's row to IB; it stays ``submitted`` only once IB acknowledged it.

    Anything else (IB refused it, did not acknowledge it in time, the gateway cannot be
    reached or dropped the connection) leaves it ``rejected`` with the reason, and the caller
    gets the BrokerError in the same call."""
    try:
        broker_order_id = broker.place_order(
            contract=contract_of(order.instrument),
            side=order.side,
            quantity=order.quantity,
            order_type=order.order_type,
            price=order.price,
            tif=order.tif,
            order_ref=_order_ref(order),
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


def order_cancel(*, order, broker=None):
    """Ask IB to cancel ``order``; an order IB never got is cancelled here at once.

    An order without IB's id may still be at IB: its sending can be cut off after IB got it
    and before the id was saved. IB is asked for the order by its orderRef first.
    """
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
