"""The gap-only sync of the bar store from the loopback gateway, counting what IB was asked."""

import math
import socket
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from ibgateway.sessions import is_session
from marketdata.bar_store import bars_sync, bars_sync_all
from marketdata.models import DataSyncLog, MarketData, OhlcvBar, contract_of
from marketdata.services import code_resolve, market_data_get
from marketdata.tasks import bars_sync_task
from tradingsite.broker import BrokerError, get_broker, reset_broker

pytestmark = pytest.mark.django_db

NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture
def market_now(pinned_market_date):
    """17:00 New York, after the close, of the last session on or before the pinned market
    date (a weekend or holiday date has no session of its own: the store ends at the one
    before it, and a sync then would ask for the days since)."""
    day = pinned_market_date
    while not is_session(day):
        day -= timedelta(days=1)
    return datetime.combine(day, time(17), tzinfo=NEW_YORK)


@pytest.fixture
def gateway_now(pinned_market_date):
    """The loopback gateway's clock: the pinned date after the close (a Sunday too)."""
    return datetime.combine(pinned_market_date, time(17), tzinfo=NEW_YORK)


def stored(code, timeframe="1Day"):
    return OhlcvBar.objects.filter(ticker=code, timeframe=timeframe).order_by("timestamp")


def timestamps(code, timeframe="1Day"):
    return list(stored(code, timeframe).values_list("timestamp", flat=True))


def test_a_first_sync_fills_the_store_and_logs_it(gateway, market_now):
    code = code_resolve(symbol="AAPL")

    log = bars_sync(code=code, timeframe="1Day", now=market_now)

    # Five years in yearly chunks, oldest first; the last one asks up to now.
    assert [(s, d, b) for s, _, d, b in gateway.history_requests] == [
        ("AAPL", "365 D", "1 day")
    ] * 5
    assert [end == "" for _, end, _, _ in gateway.history_requests] == [False] * 4 + [True]
    bars = stored(code)
    assert bars.count() > 1200
    assert set(bars.values_list("source", flat=True)) == {"ib"}
    assert log.status == "success" and log.error_message is None
    assert log.bars_fetched == log.total_bars == bars.count()
    assert log.first_synced_timestamp == bars.first().timestamp
    assert log.last_synced_timestamp == bars.last().timestamp
    # The session of the pinned date has closed (17:00 New York): its bar is stored.
    assert bars.last().timestamp.date() == market_now.date()


def test_a_later_sync_asks_only_for_the_bars_after_the_latest_stored(gateway, market_now):
    code = code_resolve(symbol="AAPL")
    bars_sync(code=code, timeframe="1Day", now=market_now)
    complete = timestamps(code)
    # The store as it was ten sessions ago.
    OhlcvBar.objects.filter(timestamp__in=complete[-10:]).delete()
    gateway.history_requests.clear()

    log = bars_sync(code=code, timeframe="1Day", now=market_now)

    ((symbol, end, duration, bar),) = gateway.history_requests
    days = (market_now - complete[-11]).days
    assert (symbol, end, bar) == ("AAPL", "", "1 day")
    assert duration == f"{days} D" and days < 20
    assert timestamps(code) == complete
    assert (log.status, log.bars_fetched, log.total_bars) == ("success", 10, len(complete))


def test_an_up_to_date_store_asks_nothing(gateway, market_now):
    code = code_resolve(symbol="MSFT")
    bars_sync(code=code, timeframe="1Day", now=market_now)
    gateway.history_requests.clear()

    log = bars_sync(code=code, timeframe="1Day", now=market_now)

    assert gateway.history_requests == []
    assert (log.status, log.bars_fetched) == ("success", 0)


def test_a_hole_is_fetched_alone(gateway, market_now):
    code = code_resolve(symbol="AAPL")
    bars_sync(code=code, timeframe="1Day", now=market_now)
    complete = timestamps(code)
    hole = complete[500:508]
    OhlcvBar.objects.filter(timestamp__in=hole).delete()
    gateway.history_requests.clear()

    log = bars_sync(code=code, timeframe="1Day", now=market_now)

    ((_, end, duration, _),) = gateway.history_requests
    assert end.startswith(complete[508].strftime("%Y%m%d"))
    assert int(duration.split()[0]) < 20
    assert timestamps(code) == complete
    assert (log.status, log.bars_fetched) == ("success", 8)


def test_an_interrupted_sync_keeps_what_it_got_and_the_next_resumes_without_duplicates(
    gateway, market_now
):
    code = code_resolve(symbol="AAPL")
    # The third of five yearly chunks meets IB's pacing violation.
    gateway.refuse_history(after=2)

    interrupted = bars_sync(code=code, timeframe="1Day", now=market_now)

    assert len(gateway.history_requests) == 3
    assert interrupted.status == "partial"
    assert "error 162" in interrupted.error_message
    assert "pacing violation" in interrupted.error_message
    kept = timestamps(code)
    assert interrupted.bars_fetched == interrupted.total_bars == len(kept) > 400
    gateway.history_requests.clear()

    resumed = bars_sync(code=code, timeframe="1Day", now=market_now)

    # Only what came after the kept bars is asked for, in chunks of at most 365 days (three
    # or four, as the pinned date falls): from the day after the last kept bar up to now.
    after = kept[-1] + timedelta(days=1)
    assert len(gateway.history_requests) == math.ceil((market_now - after) / timedelta(days=365))
    final = timestamps(code)
    assert final[: len(kept)] == kept
    assert len(final) == len(set(final)) == resumed.total_bars > 1200
    assert (resumed.status, resumed.bars_fetched) == ("success", len(final) - len(kept))
    assert list(DataSyncLog.objects.filter(ticker=code).order_by("id").values_list(
        "status", flat=True)) == ["partial", "success"]  # fmt: skip


def test_a_sync_refused_at_once_is_failed_and_stores_nothing(gateway, market_now):
    code = code_resolve(symbol="AAPL")
    gateway.refuse_history()

    log = bars_sync(code=code, timeframe="1Day", now=market_now)

    assert (log.status, log.bars_fetched, log.total_bars) == ("failed", 0, 0)
    assert "pacing violation" in log.error_message
    assert not stored(code).exists()


def test_an_unreachable_gateway_fails_the_sync_naming_it(gateway, market_now, settings):
    code = code_resolve(symbol="AAPL")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.IBKR_PORT = port
    reset_broker()

    log = bars_sync(code=code, timeframe="1Day", now=market_now)

    assert log.status == "failed"
    assert f"127.0.0.1:{port}" in log.error_message
    assert not stored(code).exists()


def test_the_beat_job_syncs_each_active_code(gateway, market_now, settings):
    active = code_resolve(symbol="AAPL")
    paused = code_resolve(symbol="MSFT")
    paused.is_active = False
    paused.save()
    settings.BAR_STORE_TIMEFRAMES = ["1Day"]

    logs = bars_sync_all(timeframes=["1Day"], now=market_now)

    assert [(log.ticker_id, log.status) for log in logs] == [(active.pk, "success")]
    assert not stored(paused).exists()
    gateway.history_requests.clear()
    # The task (wall clock): the store is current up to the gateway's last bar, so what it
    # asks is the gap from there to today, once.
    assert bars_sync_task() == {"success": 1, "partial": 0, "failed": 0}


def expire_cache(now):
    """Seed 000's hour has passed for every cached row."""
    MarketData.objects.update(created_at=now - timedelta(hours=2))


def ib_end(moment):
    return moment.strftime("%Y%m%d %H:%M:%S UTC")


def test_market_data_get_fills_the_store_and_a_second_run_asks_ib_only_for_the_gap(
    gateway, gateway_now
):
    code = code_resolve(symbol="AAPL")

    first = market_data_get(code=code, period="1 Y", bar="1 day", now=gateway_now)

    # The store had none of the year: IB is asked for it as a run always asked.
    assert gateway.history_requests == [("AAPL", "", "1 Y", "1 day")]
    ib_bars = get_broker().historical_bars(
        contract=contract_of(code), period="1 Y", bar="1 day"
    )  # the same request, for comparison
    times = [t.isoformat() for t in timestamps(code)]
    assert times == first.data["bars"]["time"] == [b.time.isoformat() for b in ib_bars]
    assert first.data["bars"]["close"] == [b.close for b in ib_bars]
    complete = timestamps(code)
    # The store as it was ten sessions ago; the cache has expired (seed 000's hour).
    OhlcvBar.objects.filter(timestamp__in=complete[-10:]).delete()
    expire_cache(gateway_now)
    gateway.history_requests.clear()

    second = market_data_get(code=code, period="1 Y", bar="1 day", now=gateway_now)

    ((symbol, end, duration, bar),) = gateway.history_requests  # the gap alone
    assert (symbol, end, bar) == ("AAPL", "", "1 day")
    assert duration == f"{(gateway_now - complete[-11]).days} D"
    assert second.served_from_cache is False and second.pk != first.pk
    assert second.data == first.data  # the agents see the same year, served from the store
    assert timestamps(code) == complete
    log = DataSyncLog.objects.filter(ticker=code).latest("id")
    assert (log.status, log.bars_fetched, log.total_bars) == ("success", 10, len(complete))

    # Up to date: the store answers alone, with the gateway gone.
    expire_cache(gateway_now)
    gateway.history_requests.clear()
    gateway.stop()
    reset_broker()
    third = market_data_get(code=code, period="1 Y", bar="1 day", now=gateway_now)
    assert third.served_from_cache is False and third.data == first.data


def test_market_data_get_asks_for_the_periods_head_and_holes_the_store_lacks(gateway, gateway_now):
    code = code_resolve(symbol="MSFT")
    first = market_data_get(code=code, period="1 Y", bar="1 day", now=gateway_now)
    complete = timestamps(code)
    # Imported later than the year's start, and with a week missing.
    OhlcvBar.objects.filter(timestamp__in=complete[:100] + complete[150:155]).delete()
    expire_cache(gateway_now)
    gateway.history_requests.clear()

    second = market_data_get(code=code, period="1 Y", bar="1 day", now=gateway_now)

    assert [(s, e, b) for s, e, _, b in gateway.history_requests] == [
        ("MSFT", ib_end(complete[100]), "1 day"),  # the head, up to the first stored bar
        ("MSFT", ib_end(complete[155]), "1 day"),  # the hole, up to the bar after it
    ]
    assert second.data == first.data
    # IB's answer to "N D" may reach further back; the year is whole, each bar once.
    assert set(complete) <= set(timestamps(code))
    assert len(timestamps(code)) == len(set(timestamps(code)))


def test_market_data_get_refused_by_ib_logs_the_sync_and_serves_nothing(gateway, gateway_now):
    code = code_resolve(symbol="AAPL")
    gateway.refuse_history()

    with pytest.raises(BrokerError, match="pacing violation"):
        market_data_get(code=code, period="1 Y", bar="1 day", now=gateway_now)

    assert not MarketData.objects.exists() and not stored(code).exists()
    log = DataSyncLog.objects.get(ticker=code)
    assert log.status == "failed" and "pacing violation" in log.error_message


def test_intraday_bars_have_holes_within_a_session(gateway, market_now):
    code = code_resolve(symbol="AAPL")
    bars_sync(code=code, timeframe="1Hour", now=market_now)
    complete = timestamps(code, "1Hour")
    # Two hours out of the middle of the last session.
    last_day = [t for t in complete if t.date() == complete[-1].date()]
    hole = last_day[2:4]
    OhlcvBar.objects.filter(timeframe="1Hour", timestamp__in=hole).delete()
    gateway.history_requests.clear()

    log = bars_sync(code=code, timeframe="1Hour", now=market_now)

    # The hole, up to the bar after it; then the hour after the last stored bar (the store
    # knows no trading hours: it asks, and IB has nothing after the close).
    assert gateway.history_requests == [
        ("AAPL", complete[complete.index(hole[-1]) + 1].strftime("%Y%m%d %H:%M:%S UTC"),
         "7200 S", "1 hour"),
        ("AAPL", "", "3600 S", "1 hour"),
    ]  # fmt: skip
    assert timestamps(code, "1Hour") == complete
    assert log.bars_fetched == 2
    assert market_now - complete[-1] < timedelta(days=1)
