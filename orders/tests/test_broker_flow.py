"""Orders to fills to positions through ib_insync and the loopback gateway, over a real socket."""

import socket
import threading
from decimal import Decimal

import pytest

from marketdata.services import code_resolve
from orders.models import Order, OrderExecution, OrderStatus, Position, Trade
from orders.services import execution_apply, order_cancel, order_place, orders_reconcile
from tradingsite.broker import BrokerUnavailable, get_broker, reset_broker
from tradingsite.exceptions import ApplicationError

pytestmark = pytest.mark.django_db

D = Decimal
CENT = D("0.01")


def market_price(gateway, symbol):
    return D(str(gateway.price(symbol))).quantize(CENT)


def reload(order):
    order.refresh_from_db()
    return order


@pytest.mark.parametrize("gateway", [{"max_fill_size": 6}], indirect=True)
def test_a_limit_order_fills_in_two_parts(gateway, wait_for):
    code = code_resolve(symbol="AAPL")
    limit = (market_price(gateway, "AAPL") * D("0.98")).quantize(CENT)
    order = order_place(
        code=code, side="BUY", quantity=10, order_type="LMT", price=limit, tif="GTC"
    )
    assert order.ibkr_order_id is not None and order.status == OrderStatus.SUBMITTED

    get_broker().wait(0.3)  # the market is above the limit: nothing fills
    assert reload(order).filled_quantity == 0

    gateway.set_price("AAPL", float(limit - D("0.50")))
    assert wait_for(lambda: reload(order).filled_quantity == 6)
    assert order.status == OrderStatus.PARTIALLY_FILLED

    gateway.set_price("AAPL", float(limit - D("0.70")))
    assert wait_for(lambda: reload(order).status == OrderStatus.FILLED)
    assert wait_for(lambda: not order.executions.filter(commission__isnull=True).exists())

    executions = list(order.executions.order_by("executed_at", "id"))
    assert [e.quantity for e in executions] == [6, 4]
    assert all(e.price <= limit for e in executions)
    assert all(e.commission == D("1.00") for e in executions)  # IB's minimum per order leg
    average = sum(e.price * e.quantity for e in executions) / 10
    assert order.avg_fill_price == average.quantize(D("0.000001"))

    trade = Trade.objects.get(order=order)
    assert (trade.entry_quantity, trade.entry_price) == (10, order.avg_fill_price)
    position = Position.objects.get(instrument=code, closed_at__isnull=True)
    assert (position.quantity, position.average_cost) == (10, order.avg_fill_price)


def test_a_replayed_execution_changes_nothing(gateway, wait_for):
    code = code_resolve(symbol="MSFT")
    order = order_place(code=code, side="BUY", quantity=5, order_type="MKT", tif="DAY")
    assert wait_for(lambda: reload(order).status == OrderStatus.FILLED)

    report = get_broker().executions()[0]
    execution_apply(report)
    assert orders_reconcile() == {"executions_applied": 0, "statuses_changed": 0}
    assert OrderExecution.objects.count() == 1
    assert Trade.objects.get(order=order).entry_quantity == 5
    assert Position.objects.get(instrument=code).quantity == 5


def test_a_cancelled_order_stays_unfilled(gateway, wait_for):
    code = code_resolve(symbol="AAPL")
    limit = (market_price(gateway, "AAPL") * D("0.90")).quantize(CENT)
    order = order_place(code=code, side="BUY", quantity=3, order_type="LMT", price=limit)
    order_cancel(order=order)
    assert wait_for(lambda: reload(order).status == OrderStatus.CANCELLED)

    gateway.set_price("AAPL", float(limit - 1))
    get_broker().wait(0.3)
    assert not OrderExecution.objects.exists()
    with pytest.raises(ApplicationError):
        order_cancel(order=order)


def test_fills_while_the_worker_was_down_are_reconciled(gateway):
    code = code_resolve(symbol="AAPL")
    limit = (market_price(gateway, "AAPL") * D("0.97")).quantize(CENT)
    order = order_place(code=code, side="BUY", quantity=4, order_type="LMT", price=limit)
    reset_broker()  # the worker stops

    gateway.set_price("AAPL", float(limit - 1))  # ...and the order fills meanwhile

    summary = orders_reconcile()  # a fresh connection after the restart
    assert summary["executions_applied"] == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.FILLED
    assert Trade.objects.get(order=order).entry_quantity == 4
    assert Position.objects.get(instrument=code, closed_at__isnull=True).quantity == 4


def test_a_gateway_that_is_down_is_one_clear_error(settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.IBKR_HOST, settings.IBKR_PORT = "127.0.0.1", port
    settings.IBKR_CONNECT_ATTEMPTS, settings.IBKR_RECONNECT_BACKOFF = 2, 0.01
    reset_broker()
    with pytest.raises(BrokerUnavailable) as down:
        code_resolve(symbol="AAPL")
    assert f"127.0.0.1:{port}" in str(down.value)
    assert "Traceback" not in str(down.value)


def test_the_connection_comes_back_after_the_gateway_restarts(gateway, settings):
    from tradingsite.ibgateway import LoopbackGateway

    first = get_broker()
    port = settings.IBKR_PORT
    gateway.stop()
    try:
        first.wait(1.0)  # ib_insync notices the closed socket...
    except BrokerUnavailable as lost:
        assert f"127.0.0.1:{port}" in str(lost)  # ...and says so clearly
    assert not first.is_connected()
    replacement = LoopbackGateway(host="127.0.0.1", port=port, seed=7)
    settings.IBKR_CONNECT_ATTEMPTS, settings.IBKR_RECONNECT_BACKOFF = 6, 0.1
    starter = threading.Timer(0.3, replacement.start)
    starter.start()
    try:
        again = get_broker()  # retries with backoff until the gateway answers
        assert again is not first and again.is_connected()
        assert code_resolve(symbol="SPY").conid == 756733
    finally:
        starter.join()
        reset_broker()
        replacement.stop()


def test_live_mode_refuses_a_paper_account(gateway, settings):
    settings.TRADING_MODE = "live"
    code = code_resolve(symbol="AAPL")
    with pytest.raises(ApplicationError) as refused:
        order_place(code=code, side="BUY", quantity=1, order_type="MKT")
    assert "trading_mode" in refused.value.extra
    assert not Order.objects.exists()


def test_bad_order_fields_are_named(gateway):
    code = code_resolve(symbol="AAPL")
    with pytest.raises(ApplicationError) as refused:
        order_place(code=code, side="HOLD", quantity=1, order_type="STP", tif="IOC")
    assert set(refused.value.extra) == {"side", "order_type", "tif"}
    with pytest.raises(ApplicationError) as refused:
        order_place(code=code, side="BUY", quantity=1, order_type="LMT", price=None)
    assert "price" in refused.value.extra
    assert not Order.objects.exists()
