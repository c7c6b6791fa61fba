"""Orders to fills to positions through ib_insync and the loopback gateway, over a real socket."""

import socket
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from ibgateway import LoopbackGateway
from marketdata.services import code_resolve, contract_of
from marketdata.tests.factories import CodeFactory
from orders.models import Order, OrderExecution, OrderStatus, Position, Trade
from orders.services import (
    execution_apply,
    order_cancel,
    order_place,
    order_place_manual,
    orders_reconcile,
)
from tradingsite.broker import BrokerError, BrokerUnavailable, OrderTicket, get_broker, reset_broker
from tradingsite.exceptions import ApplicationError
from tradingsite.testing.factories import make_decision

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
    execution_apply(report=report)
    assert orders_reconcile() == {
        "executions_applied": 0, "statuses_changed": 0, "reports_refused": 0
    }  # fmt: skip
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

    first = get_broker()
    port = settings.IBKR_PORT
    gateway.stop()
    try:
        first.wait(1.0)  # ib_insync notices the closed socket...
    except BrokerUnavailable as lost:
        assert f"127.0.0.1:{port}" in str(lost)  # ...and says so clearly
    assert not first.is_connected()
    replacement = LoopbackGateway(host="127.0.0.1", port=port, seed=7, now=gateway.market.clock)
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
    # Kept in run logs every signed-in user reads: neither the account nor the address.
    assert gateway.account not in str(refused.value) and "127.0.0.1" not in str(refused.value)
    assert not Order.objects.exists()


def test_bad_order_fields_are_named(gateway):
    code = code_resolve(symbol="AAPL")
    with pytest.raises(ApplicationError) as refused:
        order_place(code=code, side="HOLD", quantity=1, order_type="MOC", tif="IOC")
    assert set(refused.value.extra) == {"side", "order_type", "tif"}
    with pytest.raises(ApplicationError) as refused:
        order_place(code=code, side="BUY", quantity=1, order_type="LMT", price=None)
    assert "price" in refused.value.extra
    assert not Order.objects.exists()


class WorkerKilled(Exception):
    pass


class CutOffAfterSending:
    """The real broker, whose process dies once IB has the order, before IB's id is saved."""

    def __init__(self, broker):
        self.broker = broker

    def __getattr__(self, name):
        return getattr(self.broker, name)

    def place_order(self, **order):
        listeners, self.broker._listeners = self.broker._listeners, []
        try:
            self.broker.place_order(**order)  # IB takes it...
        finally:
            self.broker._listeners = listeners
        raise WorkerKilled  # ...when the process dies, before any of IB's answers was applied


def sent_then_cut_off(gateway, wait_for, *, below_market, quantity=4):
    """An order IB works, whose row here has no IB id: the worker died in between and was
    started again."""
    code = code_resolve(symbol="AAPL")
    limit = (market_price(gateway, "AAPL") * below_market).quantize(CENT)
    with pytest.raises(WorkerKilled):
        order_place(code=code, side="BUY", quantity=quantity, order_type="LMT", price=limit,
                    broker=CutOffAfterSending(get_broker()))  # fmt: skip
    reset_broker()  # the worker restarts; IB's answers to the dead one are lost
    order = Order.objects.latest("id")
    assert (order.status, order.ibkr_order_id) == (OrderStatus.SUBMITTED, None)
    at_ib = lambda: [o for o in gateway.orders() if o.order_ref == f"ts-{order.pk}"]  # noqa: E731
    assert wait_for(lambda: [o.status for o in at_ib()] == ["Submitted"])
    return order, limit, at_ib()[0].order_id


def test_an_order_cut_off_after_sending_is_cancelled_at_ib_not_only_here(gateway, wait_for):
    order, limit, ib_id = sent_then_cut_off(gateway, wait_for, below_market=D("0.90"))

    order_cancel(order=order)

    assert wait_for(lambda: reload(order).status == OrderStatus.CANCELLED)
    assert order.ibkr_order_id == ib_id
    assert [o.status for o in gateway.orders() if o.order_id == ib_id] == ["Cancelled"]
    gateway.set_price("AAPL", float(limit - 1))
    get_broker().wait(0.3)
    assert not OrderExecution.objects.exists()


def test_reconcile_ties_an_order_cut_off_after_sending_to_ib(gateway, wait_for):
    order, limit, ib_id = sent_then_cut_off(gateway, wait_for, below_market=D("0.97"))

    assert orders_reconcile() == {
        "executions_applied": 0, "statuses_changed": 0, "reports_refused": 0
    }  # fmt: skip
    assert (reload(order).ibkr_order_id, order.status) == (ib_id, OrderStatus.SUBMITTED)

    reset_broker()
    gateway.set_price("AAPL", float(limit - 1))
    assert orders_reconcile()["executions_applied"] == 1
    assert (reload(order).status, order.filled_quantity) == (OrderStatus.FILLED, 4)
    assert Position.objects.get(closed_at__isnull=True).quantity == 4


def test_a_fill_ib_reports_for_an_order_cancelled_here_is_booked(gateway, wait_for):
    """IB is the truth: a cancel that crossed a fill, or one made here alone, fills anyway."""
    order, limit, ib_id = sent_then_cut_off(gateway, wait_for, below_market=D("0.97"))
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.CANCELLED)  # cancelled here
    gateway.set_price("AAPL", float(limit - 1))

    orders_reconcile()

    assert reload(order).status == OrderStatus.FILLED and order.filled_quantity == 4
    assert Trade.objects.get(order=order).entry_quantity == 4
    assert Position.objects.get(closed_at__isnull=True).quantity == 4


@pytest.mark.parametrize("gateway", [{"max_fill_size": 2}], indirect=True)
def test_a_partial_fill_ib_reports_after_its_cancel_keeps_the_order_cancelled(gateway, wait_for):
    order, limit, ib_id = sent_then_cut_off(gateway, wait_for, below_market=D("0.97"))
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.CANCELLED)
    gateway.set_price("AAPL", float(limit - 1))  # two of the four shares fill
    assert [o.filled for o in gateway.orders() if o.order_id == ib_id] == [2]

    orders_reconcile()

    assert (reload(order).status, order.filled_quantity) == (OrderStatus.CANCELLED, 2)
    assert Position.objects.get(closed_at__isnull=True).quantity == 2


def test_reconcile_goes_on_past_a_report_it_refuses(gateway, wait_for):
    first, limit, _ = sent_then_cut_off(gateway, wait_for, below_market=D("0.97"), quantity=4)
    Order.objects.filter(pk=first.pk).update(quantity=2)  # IB fills 4: more than this row has
    second, _, _ = sent_then_cut_off(gateway, wait_for, below_market=D("0.97"), quantity=3)
    gateway.set_price("AAPL", float(limit - 1))

    summary = orders_reconcile()

    assert summary["reports_refused"] == 1 and summary["executions_applied"] == 1
    assert (reload(second).status, second.filled_quantity) == (OrderStatus.FILLED, 3)
    assert (reload(first).filled_quantity, first.executions.count()) == (0, 0)  # logged


@pytest.mark.parametrize("side, expected", [("BUY", D("138.64")), ("SELL", D("138.65"))])
def test_a_decisions_limit_price_goes_to_ib_on_its_price_steps(gateway, wait_for, side, expected):
    code = code_resolve(symbol="AAPL")
    decision = make_decision(code=code, type=side.lower(), current_price="138.6438",
                             target_price="150" if side == "BUY" else "120",
                             stop_loss="130" if side == "BUY" else "145")  # fmt: skip

    order = order_place(code=code, side=side, quantity=1, order_type="LMT",
                        price=D("138.6438"), decision=decision)  # fmt: skip

    # Acknowledged by IB (a sell below the market may have filled already).
    assert order.price == expected and order.status != OrderStatus.REJECTED
    assert [o.lmt_price for o in gateway.orders()] == [expected]


def test_a_typed_limit_price_off_ibs_steps_is_refused_naming_the_step(gateway):
    code = code_resolve(symbol="AAPL")
    with pytest.raises(ApplicationError) as refused:
        order_place_manual(code=code, side="BUY", quantity=1, price=D("100.123"))
    assert refused.value.extra == {
        "price": "100.123 is not a multiple of 0.01, IB's price step for AAPL at this price."
    }
    assert not Order.objects.exists() and not gateway.orders()
    below_a_dollar = order_place_manual(code=code, side="BUY", quantity=1, price=D("0.5123"))
    assert below_a_dollar.status == OrderStatus.SUBMITTED


def test_an_order_ib_refuses_for_its_price_step_ends_rejected(gateway, wait_for):
    """IB's error 110, which ib_insync takes for a warning, leaves no order pending here: the
    send says IB's reason, and IB's status rejects the row."""
    code = code_resolve(symbol="AAPL")
    order = Order.objects.create(
        instrument=code, side="BUY", quantity=1, price=D("100.123"), order_type="LMT", tif="DAY"
    )
    with pytest.raises(BrokerError) as refused:
        ticket = OrderTicket(side="BUY", quantity=D(1), order_type="LMT", price=D("100.123"),
                             order_ref=f"ts-{order.pk}")  # fmt: skip
        get_broker().place_order(contract=contract_of(code), ticket=ticket)
    assert "IB refused order" in str(refused.value) and "error 110" in str(refused.value)

    assert wait_for(lambda: reload(order).status == OrderStatus.REJECTED)
    assert order.error_message and "price" in order.error_message.lower()
    assert not gateway.orders()


class GatewayNamingNoAccount:
    """What the loopback gateway cannot be (ib_insync waits for an account to connect), but a
    gateway mid-login could answer: no managed account."""

    host, port = "127.0.0.1", 4002

    def account(self):
        return ""


@pytest.mark.parametrize("mode", ["paper", "live"])
def test_a_gateway_naming_no_account_takes_no_order(settings, mode):
    settings.TRADING_MODE = mode
    code = CodeFactory(symbol="AAPL")
    with pytest.raises(ApplicationError) as refused:
        order_place(code=code, side="BUY", quantity=1, order_type="MKT",
                    broker=GatewayNamingNoAccount())  # fmt: skip
    assert "names no account" in str(refused.value) and "trading_mode" in refused.value.extra
    assert not Order.objects.exists()


def test_the_connection_answers_requests_from_any_thread(gateway, settings):
    """A web server answers each request on a thread of its own; the connection is made on
    the first. A later thread's request must get its reply, not wait for it until timeout."""
    settings.IBKR_REQUEST_TIMEOUT = 3
    reset_broker()
    assert get_broker().resolve(symbol="AAPL").conid == 265598  # connects on this thread
    answers = []

    def request():
        try:
            answers.append(get_broker().resolve(symbol="MSFT").conid)
        except Exception as error:  # noqa: BLE001 - shown by the assertion below
            answers.append(error)

    for _ in range(2):  # two threads, one after the other, as two requests
        thread = threading.Thread(target=request)
        thread.start()
        thread.join(timeout=10)
    assert answers == [272093, 272093]
    assert get_broker().resolve(symbol="SPY").conid == 756733  # and back on the first


def test_a_client_id_in_use_is_said_at_once_and_the_site_takes_another(gateway, settings):
    from tradingsite.broker import ClientIdInUse, reset_broker
    from tradingsite.broker.ib import IBBroker

    settings.IBKR_CONNECT_ATTEMPTS = 5  # not one of them is waited for
    taken = get_broker().client_id
    second = IBBroker(host="127.0.0.1", port=settings.IBKR_PORT, client_id=taken, timeout=3)
    with pytest.raises(ClientIdInUse) as refused:
        second.connect()
    assert f"refused client id {taken}: another connection is using it" in str(refused.value)
    assert "IBKR_CLIENT_ID_RANGE" in str(refused.value)

    # A client outside the site (TWS's own, a script) holds the range's first free id: the
    # site's process is refused it by IB and connects under the next one instead.
    outsider = IBBroker(host="127.0.0.1", port=settings.IBKR_PORT, client_id=taken, timeout=3)
    reset_broker()
    outsider.connect()
    try:
        assert get_broker().client_id == taken + 1
        assert get_broker().resolve(symbol="AAPL").conid == 265598
    finally:
        outsider.disconnect()


def test_a_connection_is_dropped_from_a_thread_that_runs_an_event_loop(gateway):
    import asyncio

    first = get_broker()

    async def inside_a_running_loop():  # as Playwright's thread, or an async server's
        reset_broker()

    asyncio.run(inside_a_running_loop())
    assert not first.is_connected() and first.loop.is_closed()
    assert get_broker() is not first and code_resolve(symbol="SPY").conid == 756733


def test_an_orders_times_are_ibs_acknowledgement_fill_and_cancel(gateway, wait_for):
    code = code_resolve(symbol="AAPL")
    before = timezone.now()
    filled = order_place(code=code, side="BUY", quantity=2, order_type="MKT", tif="DAY")
    assert before <= filled.submitted_at <= timezone.now()  # acknowledged in the same call
    assert wait_for(lambda: reload(filled).status == OrderStatus.FILLED)
    assert filled.filled_at == filled.executions.get().executed_at  # IB's execution time
    assert filled.canceled_at is None

    limit = (market_price(gateway, "AAPL") * D("0.90")).quantize(CENT)
    working = order_place(code=code, side="BUY", quantity=3, order_type="LMT", price=limit)
    order_cancel(order=working)
    assert wait_for(lambda: reload(working).status == OrderStatus.CANCELLED)
    assert working.submitted_at <= working.canceled_at and working.filled_at is None


def test_a_working_order_ib_no_longer_knows_is_closed_by_the_reconcile(gateway, settings):
    """The gateway restarts without its book (as a DAY order of an earlier day is gone from
    IB): the order would block its contract for manual orders; the reconcile closes it, with
    the reason, and a new manual order on the contract is accepted."""

    code = code_resolve(symbol="AAPL")
    limit = (market_price(gateway, "AAPL") * D("0.90")).quantize(CENT)
    lost = order_place_manual(code=code, side="BUY", quantity=3, order_type="LMT", price=limit)
    port = settings.IBKR_PORT
    gateway.stop()
    reset_broker()
    fresh = LoopbackGateway(host="127.0.0.1", port=port, seed=7, now=gateway.market.clock)
    fresh.start()
    try:
        young = orders_reconcile()  # sent a moment ago: it may still be on its way to IB
        assert young["statuses_changed"] == 0 and reload(lost).status == OrderStatus.SUBMITTED
        Order.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(minutes=1))

        assert orders_reconcile()["statuses_changed"] == 1
        reload(lost)
        assert lost.status == OrderStatus.CANCELLED and lost.canceled_at is not None
        assert lost.error_message.startswith("IB does not know this order any more")
        again = order_place_manual(code=code, side="BUY", quantity=3, order_type="LMT",
                                   price=limit)  # fmt: skip
        assert again.status == OrderStatus.SUBMITTED and again.ibkr_order_id is not None
        assert orders_reconcile()["statuses_changed"] == 0  # an order IB knows stays working
        assert reload(again).status == OrderStatus.SUBMITTED
    finally:
        reset_broker()
        fresh.stop()
