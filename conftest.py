"""Fixtures shared by every app's tests: real services, started per test where they are cheap."""

import itertools
import time

import pytest

from ibgateway import LoopbackGateway
from tradingsite.broker import get_broker, reset_broker
from tradingsite.celery import app as celery_app
from tradingsite.testing.market import market_date, write_bars

_client_ids = itertools.count(11)
_worker_client_ids = itertools.count(100)  # the worker is client 70 + 10 (a worker's offset)


def pytest_configure(config):
    try:
        day = market_date()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[MARKET_DATE] = day


def pytest_report_header(config):
    return f"simulated market date: {config.stash[MARKET_DATE]} (MARKET_DATE), after the close"


MARKET_DATE = pytest.StashKey()


@pytest.fixture(scope="session")
def pinned_market_date(pytestconfig):
    """The day every loopback gateway of the suite stands on (``MARKET_DATE``)."""
    return pytestconfig.stash[MARKET_DATE]


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("admin", "admin@example.com", "pw-admin-123")


@pytest.fixture
def gateway(request, settings, pinned_market_date, tmp_path_factory):
    """A loopback IB Gateway on a free port, with the product's broker settings pointing at it.

    It stands on the suite's pinned market date. Parametrise indirectly with a dict of
    LoopbackGateway options, e.g. {"max_fill_size": 6}, and ``"bars": {"AAPL": "up"}`` for
    bars files that make the agents see a trend on purpose (``write_bars``).
    """
    client_id = next(_client_ids)
    options = {"seed": 7, "now": pinned_market_date, "master_client_id": client_id + 3,
               **getattr(request, "param", {})}  # fmt: skip
    if trends := options.pop("bars", None):
        options["bars_dir"] = tmp_path_factory.mktemp("bars")
        for symbol, trend in trends.items():
            write_bars(options["bars_dir"], symbol, trend=trend)
    server = LoopbackGateway(host="127.0.0.1", port=0, **options)
    port = server.start()
    settings.IBKR_HOST = "127.0.0.1"
    settings.IBKR_PORT = port
    settings.IBKR_CLIENT_ID = client_id
    settings.IBKR_MASTER_CLIENT_ID = options["master_client_id"]  # ib_listen's
    settings.IBKR_CONNECT_ATTEMPTS = 2
    settings.IBKR_RECONNECT_BACKOFF = 0.05
    settings.IBKR_PACING_CLOCK = "simulated"
    reset_broker()
    yield server
    reset_broker()
    server.stop()


@pytest.fixture
def wait_for():
    """Run the broker's event loop until ``condition()`` holds (events are applied meanwhile)."""

    def wait(condition, timeout=5.0):
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                return False
            get_broker().wait(0.05)
        return True

    return wait


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, tmp_path_factory, pinned_market_date):
    """A real Celery worker process on the test database, with its own loopback gateway.

    Yields ``(gateway, port, media_root)``: the worker writes execution charts under
    ``media_root``, so a test that serves them sets ``settings.MEDIA_ROOT`` to it. Tests that
    use it need ``django_db(transaction=True)`` so
    that the worker sees their rows.
    """
    import os
    import subprocess
    import sys
    from pathlib import Path

    from django.conf import settings
    from django.db import connection

    gateway = LoopbackGateway(
        host="127.0.0.1", port=0, seed=11, now=pinned_market_date, master_client_id=73
    )
    media = tmp_path_factory.mktemp("media")
    port = gateway.start()
    db = connection.settings_dict
    env = {
        **os.environ,
        "TESTING": "true",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "IBKR_HOST": "127.0.0.1",
        "IBKR_PORT": str(port),
        "IBKR_CLIENT_ID": "70",
        "IBKR_MASTER_CLIENT_ID": "73",
        "IBKR_PACING_CLOCK": "simulated",
        "MEDIA_ROOT": str(media),
    }
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tradingsite", "worker", "--pool=solo",
             "--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-n", f"test-{os.getpid()}@%h"],
            cwd=Path(__file__).resolve().parent, env=env, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while not celery_app.control.ping(timeout=0.5):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            gateway.stop()
            pytest.fail(f"the Celery worker did not start:\n{log.read_text()[-3000:]}")
    yield gateway, port, str(media)
    process.terminate()
    process.wait(timeout=20)
    gateway.stop()


@pytest.fixture
def worker_gateway(celery_worker_process, settings):
    """This test process talks to the worker's gateway too (to resolve codes, so that the
    conids agree), as a client of its own, and serves the worker's media (its charts)."""
    gateway, port, settings.MEDIA_ROOT = celery_worker_process
    settings.IBKR_HOST, settings.IBKR_PORT = "127.0.0.1", port
    settings.IBKR_CLIENT_ID = next(_worker_client_ids)
    settings.IBKR_MASTER_CLIENT_ID = 73  # the worker gateway's master client (ib_listen)
    reset_broker()
    yield gateway
    reset_broker()
