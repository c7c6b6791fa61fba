"""Fixtures shared by every app's tests: real services, started per test where they are cheap."""

import itertools
import time

import pytest

_client_ids = itertools.count(11)


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("admin", "admin@example.com", "pw-admin-123")


@pytest.fixture
def gateway(request, settings):
    """A loopback IB Gateway on a free port, with the product's broker settings pointing at it.

    Parametrise indirectly with a dict of LoopbackGateway options, e.g. {"max_fill_size": 6}.
    """
    from tradingsite.broker import reset_broker
    from tradingsite.ibgateway import LoopbackGateway

    options = {"seed": 7, **getattr(request, "param", {})}
    server = LoopbackGateway(host="127.0.0.1", port=0, **options)
    port = server.start()
    settings.IBKR_HOST = "127.0.0.1"
    settings.IBKR_PORT = port
    settings.IBKR_CLIENT_ID = next(_client_ids)
    settings.IBKR_CONNECT_ATTEMPTS = 2
    settings.IBKR_RECONNECT_BACKOFF = 0.05
    reset_broker()
    yield server
    reset_broker()
    server.stop()


@pytest.fixture
def wait_for():
    """Run the broker's event loop until ``condition()`` holds (events are applied meanwhile)."""
    from tradingsite.broker import get_broker

    def wait(condition, timeout=5.0):
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                return False
            get_broker().wait(0.05)
        return True

    return wait
