"""The broker's connection when the gateway goes away: killed and started again on its port
(IB keeps its orders: the same gateway's book), or hung with its sockets open. Over the real
socket, with the unmodified ib_insync client."""

import time
from decimal import Decimal

import pytest

from marketdata.services import code_resolve
from orders.models import Order, OrderStatus
from orders.services import order_place
from tradingsite.broker import BrokerError, BrokerUnavailable, get_broker, reset_broker

pytestmark = [pytest.mark.faults, pytest.mark.django_db]

D = Decimal


def below_market(gateway, symbol):
    return (D(str(gateway.price(symbol))) * D("0.95")).quantize(D("0.01"))


def at_ib(gateway, order):
    return [o for o in gateway.orders() if o.order_ref == f"ts-{order.pk}"]


def eventually(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_after_a_gateway_restart_the_next_order_reaches_ib_on_a_new_connection(gateway):
    code = code_resolve(symbol="AAPL")
    first = get_broker()
    gateway.stop()  # killed...
    gateway.start()  # ...and back on its port, before the process asks anything

    order = order_place(code=code, side="BUY", quantity=3, price=below_market(gateway, "AAPL"))

    assert get_broker() is not first  # the dead connection was found and replaced
    assert order.status == OrderStatus.SUBMITTED and order.error_message is None
    [ib_order] = at_ib(gateway, order)
    assert (ib_order.order_id, ib_order.status) == (order.ibkr_order_id, "Submitted")


def test_an_order_sent_on_a_connection_the_gateway_closed_is_rejected_saying_so(gateway):
    code = code_resolve(symbol="AAPL")
    held = get_broker()  # as a run holds it between two steps
    price = below_market(gateway, "AAPL")
    gateway.stop()

    with pytest.raises(BrokerUnavailable) as lost:
        order_place(code=code, side="BUY", quantity=3, price=price, broker=held)

    order = Order.objects.get()
    assert order.status == OrderStatus.REJECTED and order.ibkr_order_id is None
    assert order.error_message == str(lost.value)
    assert f"IB Gateway/TWS at 127.0.0.1:{gateway.port}" in order.error_message
    assert not gateway.orders()
    # One failed request: once the gateway is back, the next order goes through.
    gateway.start()
    again = order_place(code=code, side="BUY", quantity=3, price=price)
    assert again.status == OrderStatus.SUBMITTED and [o.order_id for o in at_ib(gateway, again)]


def test_a_hung_gateway_is_found_by_the_heartbeat(gateway, settings):
    settings.IBKR_HEARTBEAT_SECONDS, settings.IBKR_HEARTBEAT_TIMEOUT = 0, 0.3
    reset_broker()
    broker = get_broker()
    assert broker.alive()
    gateway.pause(1.5)  # the socket stays open; nothing answers
    started = time.monotonic()
    assert not broker.alive()
    assert time.monotonic() - started < 1.0
    assert not broker.is_connected()  # closed, so the next get_broker() connects anew


def test_an_order_ib_does_not_acknowledge_in_time_is_rejected_and_cancelled_at_ib(
    gateway, settings
):
    settings.IBKR_ORDER_ACK_TIMEOUT = 0.5
    reset_broker()
    code = code_resolve(symbol="MSFT")
    price = below_market(gateway, "MSFT")
    gateway.pause(1.5)  # heard from a moment ago, so no heartbeat: the order is written

    with pytest.raises(BrokerError) as unacknowledged:
        order_place(code=code, side="BUY", quantity=2, price=price)

    assert "did not acknowledge" in str(unacknowledged.value)
    order = Order.objects.get()
    assert order.status == OrderStatus.REJECTED and order.error_message == str(unacknowledged.value)
    # IB read the order once it woke, and the cancel sent after it: nothing works it.
    assert eventually(lambda: [o.status for o in at_ib(gateway, order)] == ["Cancelled"])
