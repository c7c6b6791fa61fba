"""ib_listen: IB's word lands at once, with nobody else driving a connection.

The listener runs for real: in a thread of this process with its own connection (as IB's
master client) over the loopback gateway's socket, or as ``manage.py ib_listen`` itself.
The test process places orders through the services (its own client id) and then only reads
the database: it never drives its own connection, so whatever lands was the listener's doing.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection

from marketdata.services import code_resolve
from orders.listener import IBListener
from orders.models import Order, OrderStatus, Position
from orders.services import order_place_manual

pytestmark = pytest.mark.django_db(transaction=True)

D = Decimal


def eventually(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def status(order):
    return Order.objects.values_list("status", flat=True).get(pk=order.pk)


@pytest.fixture
def listening(gateway):
    """An IBListener on a thread of its own, caught up with IB before the test goes on."""
    listener = IBListener(retry_seconds=0.1)

    def run():
        try:
            listener.run()
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert listener.caught_up.wait(10), "the listener did not connect"
    yield listener
    listener.stop.set()
    thread.join(10)
    assert not thread.is_alive()


def resting_then_filled(gateway, code, quantity):
    """A buy limit below the market (acknowledged, working), then the market falls to it."""
    price = D(str(gateway.price(code.symbol)))
    limit = (price * D("0.95")).quantize(D("0.01"))
    order = order_place_manual(code=code, side="BUY", quantity=quantity, price=limit)
    assert status(order) == OrderStatus.SUBMITTED
    gateway.set_price(code.symbol, float(limit - 1))
    return order


def test_without_a_listener_a_fill_waits_for_someone_to_drive_the_connection(gateway):
    aapl = code_resolve(symbol="AAPL")
    order = resting_then_filled(gateway, aapl, 10)
    assert eventually(lambda: [e.shares for e in gateway.executions()] == [10])  # IB filled it
    time.sleep(0.3)
    assert status(order) == OrderStatus.SUBMITTED  # the site has not heard it (issue 14)


def test_a_fill_lands_with_no_other_request_made(listening, gateway):
    aapl = code_resolve(symbol="AAPL")
    order = order_place_manual(code=aapl, side="BUY", quantity=10, order_type="MKT")
    assert eventually(lambda: status(order) == OrderStatus.FILLED)
    assert eventually(lambda: not Order.objects.get(pk=order.pk).executions.filter(
        commission__isnull=True).exists())  # fmt: skip
    [execution] = Order.objects.get(pk=order.pk).executions.all()
    assert execution.commission == D("1.00")
    position = Position.objects.get(instrument=aapl, closed_at__isnull=True)
    assert position.quantity == 10
    # The symbol is free again: a second order is taken right after.
    again = order_place_manual(code=aapl, side="SELL", quantity=4, order_type="MKT")
    assert eventually(lambda: status(again) == OrderStatus.FILLED)
    assert eventually(lambda: Position.objects.get(pk=position.pk).quantity == 6)


def test_a_listener_that_was_down_catches_up_on_connect(gateway):
    msft = code_resolve(symbol="MSFT")
    order = resting_then_filled(gateway, msft, 5)
    assert eventually(lambda: [e.shares for e in gateway.executions()] == [5])
    assert status(order) == OrderStatus.SUBMITTED

    listener = IBListener()
    listener.step()  # connects, catches up, subscribes, listens once
    try:
        assert listener.caught_up.is_set()
        assert status(order) == OrderStatus.FILLED
        assert Position.objects.get(instrument=msft, closed_at__isnull=True).quantity == 5
    finally:
        listener.stop.set()
        listener.run()  # returns at once, disconnecting


def test_an_open_position_follows_the_gateways_price(listening, gateway):
    spy = code_resolve(symbol="SPY")
    order = order_place_manual(code=spy, side="BUY", quantity=3, order_type="MKT")
    assert eventually(lambda: status(order) == OrderStatus.FILLED)
    cost = Position.objects.get(instrument=spy, closed_at__isnull=True).average_cost

    for price in (cost + D("2.50"), cost - D("1.25")):
        gateway.set_price("SPY", price)
        assert eventually(
            lambda price=price: Position.objects.get(
                instrument=spy, closed_at__isnull=True
            ).current_price == price
        )  # fmt: skip
        position = Position.objects.get(instrument=spy, closed_at__isnull=True)
        assert position.unrealized_pnl == (price - cost) * 3


def test_manage_py_ib_listen_applies_fills_and_stops_on_sigterm(gateway):
    db = connection.settings_dict
    env = {
        **os.environ,
        "TESTING": "true",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "IBKR_HOST": "127.0.0.1",
        "IBKR_PORT": str(gateway.port),
        "IBKR_MASTER_CLIENT_ID": str(settings.IBKR_MASTER_CLIENT_ID),
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "ib_listen"], cwd=settings.BASE_DIR, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout.readline().startswith(
            f"ib_listen: IB at 127.0.0.1:{gateway.port} as master client"
        )
        assert eventually(
            lambda: any(s.client_id == settings.IBKR_MASTER_CLIENT_ID
                        for s in gateway.server.sessions if s.ready), timeout=30,
        )  # fmt: skip
        aapl = code_resolve(symbol="AAPL")
        order = order_place_manual(code=aapl, side="BUY", quantity=2, order_type="MKT")
        assert eventually(lambda: status(order) == OrderStatus.FILLED, timeout=15)
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert "ib_listen stopped." in stdout
    assert "Traceback" not in stderr
