"""Writes for orders, trades and positions: fills, P&L and the position book.

Every change runs inside one transaction with the order, its open trades and the position
locked (``select_for_update``), so two fills of the same contract arriving at once are
applied one after the other.
"""

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from marketdata.models import Code
from tradingsite.decimals import MONEY_PLACES, PRICE_PLACES, quantize, to_decimal
from tradingsite.exceptions import ApplicationError

from .models import Order, OrderSide, OrderStatus, Position, Trade

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
def order_status_set(*, order, status, fill_price=None, at=None):
    """Move an order to ``status``, refreshing ``updated_at``.

    ``filled`` fills what remains of the order (at ``fill_price``, or the limit price) and so
    creates or closes its trades; a final status (filled, cancelled, rejected) never changes.
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
    order.save(update_fields=["status", "updated_at"])
    return order


@transaction.atomic
def order_fill_record(*, order, quantity, price, at=None):
    """Apply one fill (execution) of ``order``: its status, its trades and the position."""
    order = _locked_order(order)
    quantity = _positive(quantity, field="quantity")
    price = _positive(price, field="price")
    at = at or timezone.now()
    if order.status in (OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.FILLED):
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
    order.status = OrderStatus.FILLED if filled == order.quantity else OrderStatus.PARTIALLY_FILLED
    order.save(update_fields=["avg_fill_price", "filled_quantity", "status", "updated_at"])
    _book_fill(order=order, quantity=quantity, price=price, at=at)
    return order


def _book_fill(*, order, quantity, price, at):
    """Close opposite trades first in, first out, then open or extend this order's trade."""
    sign = _side_sign(order.side)
    # Lock the contract's code row first: it serialises fills of different orders of the same
    # contract, including the first one, which has no position row to lock yet.
    list(Code.objects.select_for_update().filter(conid=order.instrument_id).values_list("pk"))
    position = (
        Position.objects.select_for_update()
        .filter(instrument_id=order.instrument_id, closed_at__isnull=True)
        .first()
    )
    held = position.quantity if position else 0
    closing = min(quantity, abs(held)) if held * sign < 0 else 0
    opening = quantity - closing
    if closing:
        _close_trades(order=order, quantity=closing, price=price, at=at)
        position.quantity = held + sign * closing
        if position.quantity == 0:
            position.closed_at = at
            position.unrealized_pnl = 0
        _mark(position, price)
        position.save()
        if position.quantity == 0:
            position = None
    if opening:
        _open_trade(order=order, quantity=opening, price=price, at=at)
        if position is None:
            position = Position(instrument_id=order.instrument_id, quantity=0, average_cost=price)
        held = abs(position.quantity)
        position.average_cost = quantize(
            (position.average_cost * held + price * opening) / (held + opening), PRICE_PLACES
        )
        position.quantity += sign * opening
        _mark(position, price)
        position.save()


def _mark(position, price):
    position.current_price = price
    if position.closed_at is None:
        position.unrealized_pnl = quantize(
            (price - position.average_cost) * position.quantity, MONEY_PLACES
        )


def _open_trade(*, order, quantity, price, at):
    # A second partial fill of the same order extends its trade rather than opening another.
    trade = (
        Trade.objects.select_for_update().filter(order=order, exit_quantity__isnull=True).first()
    )
    if trade is None:
        Trade.objects.create(
            order=order,
            instrument_id=order.instrument_id,
            entry_price=price,
            entry_quantity=quantity,
            entry_date=at,
        )
        return
    total = trade.entry_quantity + quantity
    trade.entry_price = quantize(
        (trade.entry_price * trade.entry_quantity + price * quantity) / total, PRICE_PLACES
    )
    trade.entry_quantity = total
    trade.save(update_fields=["entry_price", "entry_quantity", "updated_at"])


def _close_trades(*, order, quantity, price, at):
    open_trades = (
        Trade.objects.select_for_update(of=("self",))
        .select_related("order")
        .filter(instrument_id=order.instrument_id)
        .exclude(order__side=order.side)
        .filter(Q(exit_quantity__isnull=True) | Q(exit_quantity__lt=F("entry_quantity")))
        .order_by("entry_date", "id")
    )
    left = quantity
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
        trade.realized_pnl = quantize((trade.realized_pnl or 0) + pnl, MONEY_PLACES)
        trade.save(
            update_fields=["exit_price", "exit_quantity", "exit_date", "realized_pnl", "updated_at"]
        )
        left -= take


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
