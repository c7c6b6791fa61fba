from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from marketdata.tests.factories import CodeFactory
from orders.models import Order, OrderSide, OrderStatus, Position, Trade
from orders.services import order_fill_record, order_status_set, position_mark_price
from orders.tests.factories import OrderFactory
from tradingsite.exceptions import ApplicationError

pytestmark = pytest.mark.django_db

D = Decimal


def fill(code, side, quantity, price, **order_kwargs):
    order = OrderFactory(instrument=code, side=side, quantity=D(quantity), **order_kwargs)
    return order_fill_record(order=order, quantity=quantity, price=price)


def open_position(code):
    return Position.objects.get(instrument=code, closed_at__isnull=True)


def test_long_round_trip_two_entries_one_exit():
    code = CodeFactory()
    first = fill(code, OrderSide.BUY, "10", "100")
    second = fill(code, OrderSide.BUY, "10", "110")
    position = open_position(code)
    assert position.quantity == D("20")
    assert position.average_cost == D("105")  # (10*100 + 10*110) / 20

    position_mark_price(conid=code.conid, price="120")
    position.refresh_from_db()
    assert position.unrealized_pnl == D("300")  # (120 - 105) * 20

    fill(code, OrderSide.SELL, "20", "115")
    trade_1, trade_2 = Trade.objects.get(order=first), Trade.objects.get(order=second)
    assert (trade_1.exit_price, trade_1.exit_quantity, trade_1.realized_pnl) == (
        D("115"),
        D("10"),
        D("150"),  # (115 - 100) * 10
    )
    assert trade_2.realized_pnl == D("50")  # (115 - 110) * 10
    closed = Position.objects.get(instrument=code)
    assert closed.quantity == 0 and closed.closed_at is not None  # kept as history
    assert not Position.objects.filter(instrument=code, closed_at__isnull=True).exists()


def test_short_trade_pnl_is_entry_minus_exit():
    code = CodeFactory()
    short = fill(code, OrderSide.SELL, "5", "50")
    position = open_position(code)
    assert position.quantity == D("-5")
    position_mark_price(conid=code.conid, price="48")
    position.refresh_from_db()
    assert position.unrealized_pnl == D("10")  # (48 - 50) * -5

    fill(code, OrderSide.BUY, "5", "45")
    trade = Trade.objects.get(order=short)
    assert trade.realized_pnl == D("25")  # (50 - 45) * 5
    assert trade.exit_price == D("45")


def test_losing_short_has_negative_pnl():
    code = CodeFactory()
    short = fill(code, OrderSide.SELL, "3", "20")
    fill(code, OrderSide.BUY, "3", "26")
    assert Trade.objects.get(order=short).realized_pnl == D("-18")  # (20 - 26) * 3


def test_partial_fills_update_status_and_extend_one_trade():
    code = CodeFactory()
    order = OrderFactory(instrument=code, quantity=D("10"), price=D("100"))
    before = order.updated_at
    order = order_fill_record(order=order, quantity="6", price="99.5")
    assert order.status == OrderStatus.PARTIALLY_FILLED
    assert order.updated_at > before
    order = order_fill_record(order=order, quantity="4", price="99.7")
    assert order.status == OrderStatus.FILLED
    assert order.filled_quantity == D("10")
    assert order.avg_fill_price == D("99.58")  # (6*99.5 + 4*99.7) / 10
    trade = Trade.objects.get(order=order)
    assert (trade.entry_quantity, trade.entry_price) == (D("10"), D("99.58"))
    assert open_position(code).average_cost == D("99.58")


def test_partial_exits_average_the_exit_price():
    code = CodeFactory()
    entry = fill(code, OrderSide.BUY, "10", "100")
    fill(code, OrderSide.SELL, "4", "105")
    trade = Trade.objects.get(order=entry)
    assert (trade.exit_quantity, trade.realized_pnl) == (D("4"), D("20"))
    position = open_position(code)
    assert (position.quantity, position.average_cost) == (D("6"), D("100"))

    fill(code, OrderSide.SELL, "6", "110")
    trade.refresh_from_db()
    assert trade.exit_quantity == D("10")
    assert trade.exit_price == D("108")  # (4*105 + 6*110) / 10
    assert trade.realized_pnl == D("80")  # 20 + (110 - 100) * 6


@pytest.mark.parametrize(
    ("entry", "exit_", "mark"), [("BUY", "SELL", "210"), ("SELL", "BUY", "90")]
)
def test_after_a_partial_close_the_cost_is_the_open_lots_and_the_pnl_adds_up(entry, exit_, mark):
    """First in, first out closes the lot at 100; what is left cost 200, long or short."""
    code = CodeFactory()
    fill(code, entry, "10", "100")
    fill(code, entry, "10", "200")
    fill(code, exit_, "10", mark)
    position_mark_price(conid=code.conid, price=mark)
    position = open_position(code)
    assert position.average_cost == D("200")
    realized = sum(trade.realized_pnl or 0 for trade in Trade.objects.all())
    cash = sum((D(p) * 10 * (-1 if side == "BUY" else 1))
               for side, p in [(entry, "100"), (entry, "200"), (exit_, mark)])  # fmt: skip
    value = position.quantity * D(mark)
    assert realized + position.unrealized_pnl == cash + value  # 1200 either way
    fill(code, entry, "10", "300")  # adding again averages with the open lots only
    assert open_position(code).average_cost == D("250")


def test_a_fill_through_zero_closes_and_opens_the_other_way():
    code = CodeFactory()
    fill(code, OrderSide.BUY, "5", "100")
    flip = fill(code, OrderSide.SELL, "8", "102")
    assert Trade.objects.get(order__side=OrderSide.BUY).realized_pnl == D("10")
    short_trade = Trade.objects.get(order=flip)
    assert (short_trade.entry_quantity, short_trade.entry_price) == (D("3"), D("102"))
    position = open_position(code)
    assert (position.quantity, position.average_cost) == (D("-3"), D("102"))
    assert Position.objects.filter(instrument=code, closed_at__isnull=False).count() == 1


def test_status_filled_fills_the_rest_and_creates_the_trade():
    order = OrderFactory(quantity=D("7"), price=D("12.5"))
    order = order_status_set(order=order, status=OrderStatus.FILLED)
    assert order.status == OrderStatus.FILLED
    trade = Trade.objects.get(order=order)
    assert (trade.entry_quantity, trade.entry_price) == (D("7"), D("12.5"))


def test_status_change_refreshes_updated_at():
    order = OrderFactory()
    Order.objects.filter(pk=order.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    order.refresh_from_db()
    stale = order.updated_at
    order = order_status_set(order=order, status=OrderStatus.CANCELLED)
    assert order.updated_at > stale
    assert Order.objects.get(pk=order.pk).status == OrderStatus.CANCELLED


def test_final_statuses_do_not_change():
    order = order_status_set(order=OrderFactory(), status=OrderStatus.CANCELLED)
    with pytest.raises(ApplicationError) as refused:
        order_status_set(order=order, status=OrderStatus.SUBMITTED)
    assert "status" in refused.value.extra
    with pytest.raises(ApplicationError):
        order_fill_record(order=order, quantity="1", price="100")
    assert not Trade.objects.exists()


def test_overfill_is_refused_and_changes_nothing():
    order = OrderFactory(quantity=D("10"))
    order_fill_record(order=order, quantity="6", price="100")
    with pytest.raises(ApplicationError) as refused:
        order_fill_record(order=order, quantity="5", price="100")
    assert "quantity" in refused.value.extra
    order.refresh_from_db()
    assert order.filled_quantity == D("6")
    assert open_position(order.instrument).quantity == D("6")


def test_market_order_status_filled_needs_a_price():
    order = OrderFactory(order_type="MKT", price=None)
    with pytest.raises(ApplicationError) as refused:
        order_status_set(order=order, status=OrderStatus.FILLED)
    assert "fill_price" in refused.value.extra
    assert not Trade.objects.exists()
