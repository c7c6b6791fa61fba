"""Processes that talk to one gateway share IB's historical-data pacing (counted in Redis)
and ask IB once for bars that several of them miss at the same time (single flight)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from django.db import connection

from ibgateway.protocol import In
from marketdata.models import MarketData
from marketdata.services import code_resolve
from marketdata.tests.factories import cache_market_data, live_at_cached_close
from tradingsite.broker.pacing import PacingRules, SharedPacing, SimulatedTime
from workflows.services import execution_prepare, execution_run, strategy_create

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)

FETCH = """
import logging, os, sys
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingsite.settings")
django.setup()
logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s", force=True)
for name in ("ib_insync", "tradingsite.broker"):
    logging.getLogger(name).setLevel(logging.WARNING)
from marketdata.models import Code
from marketdata.services import market_data_get
from tradingsite.broker import get_broker
get_broker()
print("ready", flush=True)
row = market_data_get(code=Code.objects.get(symbol=sys.argv[1]), period="1 Y", bar="1 day")
source = ("meanwhile" if getattr(row, "fetched_meanwhile", False)
          else "cache" if row.served_from_cache else "IB")
print("result", source, row.pk, flush=True)
"""


def start_fetch(settings, symbol):
    db = connection.settings_dict
    env = {
        **os.environ, "TESTING": "true", "REDIS_URL": settings.REDIS_URL,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "IBKR_HOST": "127.0.0.1", "IBKR_PORT": str(settings.IBKR_PORT),
        "IBKR_MASTER_CLIENT_ID": str(settings.IBKR_MASTER_CLIENT_ID),
        "IBKR_PACING_CLOCK": "simulated", "PYTHONUNBUFFERED": "1",
    }  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-c", FETCH, symbol], cwd=ROOT, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip


def read_until(process, prefix):
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith(prefix):
            return line.split()
    pytest.fail(f"no {prefix!r} line; the process said:\n{''.join(lines)[-3000:]}")


def historical_requests(gateway):
    return gateway.server.requests[In.REQ_HISTORICAL_DATA]


def test_the_rules_are_counted_for_the_gateway_not_per_connection(settings):
    server = redis.Redis.from_url(settings.REDIS_URL)
    server.delete(*server.keys("tradingsite:ib-pacing:test-gateway:*") or ["none"])
    clock = SimulatedTime()
    one, two = (
        SharedPacing(server, "test-gateway", PacingRules(), clock=clock, sleep=clock.sleep)
        for _ in range(2)
    )
    waits = []
    assert one.acquire(("AAPL", "1 Y"), 1) == 0
    clock.now += 4
    assert two.acquire(("AAPL", "1 Y"), 1, on_wait=waits.append) == 11  # identical: 15 s
    assert waits == [11]
    assert clock.now == 1015
    for n in range(5):  # six for one contract within 2 s, whoever sends them
        (one if n % 2 else two).acquire(("AAPL", n), 1)
    clock.now += 0.5
    assert round(one.acquire(("AAPL", 9), 1), 6) == 1.5  # two seconds after the first
    # sixty in ten minutes for the whole gateway: 8 so far, 52 more
    for n in range(52):
        (one if n % 2 else two).acquire(("X", n), 100 + n)
    assert clock.slept == [11, pytest.approx(1.5)]
    # the 61st waits until ten minutes after the first (t=1000)
    assert two.acquire(("X", 999), 999) == pytest.approx(1600 - 1017)
    assert clock.now == pytest.approx(1600)


def test_a_second_process_waits_for_the_first_ones_identical_request_and_says_so(
    gateway, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    code = code_resolve(symbol="AAPL")
    other = start_fetch(settings, "AAPL")
    assert read_until(other, "result")[1] == "IB"
    assert other.wait(timeout=20) == 0
    assert historical_requests(gateway) == 1
    # This process has the same bars to fetch (the other's were dropped from the cache) and
    # the weekly ones in the cache: its request is the same as the other's, 0 s ago.
    MarketData.objects.all().delete()
    cache_market_data(code, period="2 Y", bar="1 week", trend="up")
    strategy = strategy_create(name="Paced", type="two_indicator", param={}, codes=[code])
    execution = execution_prepare(strategy=strategy, dry_run=True)
    execution = execution_run(execution_id=execution.pk, dry_run=True)
    logs = [entry["message"] for entry in execution.results["execution_logs"]]
    assert (
        "AAPL 1 Y / 1 day: waiting 15.0 s for IB's historical-data pacing (shared by every "
        "process that talks to this gateway)"
    ) in logs
    assert any(m.startswith("AAPL 1 Y / 1 day: 2") and "bars from IB" in m for m in logs), logs
    assert historical_requests(gateway) == 2


def test_runs_missing_the_same_bars_at_once_ask_ib_once(gateway, settings):
    code = code_resolve(symbol="MSFT")
    server = redis.Redis.from_url(settings.REDIS_URL)
    # Someone is asking IB for these bars: both processes miss the cache and wait for it.
    held = server.lock(f"tradingsite:bars-flight:{code.conid}:1 Y:1 day", timeout=60)
    assert held.acquire(blocking=False)
    processes = [start_fetch(settings, "MSFT") for _ in range(2)]
    try:
        for process in processes:
            read_until(process, "ready")
        for process in processes:
            read_until(process, "waiting for another process's IB request of the bars")
        assert historical_requests(gateway) == 0
        held.release()  # the holder gave up without storing anything
        results = sorted(read_until(process, "result")[1:] for process in processes)
    finally:
        for process in processes:
            process.kill()
            process.wait()
    assert [source for source, _ in results] == ["IB", "meanwhile"]
    assert results[0][1] == results[1][1]  # the same cached row
    assert historical_requests(gateway) == 1
    assert MarketData.objects.filter(conid=code.conid).count() == 1
    live_at_cached_close(gateway, code)  # the bars are usable as any run's
