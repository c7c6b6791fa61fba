"""The simulated market: history by seed or from a file per symbol with IB's limits, market
data that follows the price, and the pinned clock and session calendar it stands on."""

from datetime import UTC, date, datetime

import pytest

from ibgateway.clock import PinnedClock, make_clock
from ibgateway.sessions import SessionCalendar

from .support import D, connect, daily_bars, start_gateway, stock, until


def after_the_close(day):
    """17:00 New York on ``day``, in UTC (EST or EDT as the day has it)."""
    return PinnedClock(day).start


def test_history_is_the_same_for_the_same_seed_and_differs_for_another(ib, gateway):
    first = daily_bars(ib, stock(ib, "AAPL"))
    twin = start_gateway(seed=7)
    other = start_gateway(seed=8)
    try:
        twin_ib, other_ib = connect(twin, client_id=2), connect(other, client_id=3)
        assert daily_bars(twin_ib, stock(twin_ib, "AAPL")) == first
        assert daily_bars(other_ib, stock(other_ib, "AAPL")) != first
        twin_ib.disconnect()
        other_ib.disconnect()
    finally:
        twin.stop()
        other.stop()
    # One month of sessions up to the fixed clock's Friday, each a sound OHLC bar.
    assert 19 <= len(first) <= 23
    assert first[-1][0] == date(2024, 6, 14)
    assert all(low <= min(o, c) and max(o, c) <= high for _, o, high, low, c, _ in first)
    assert all(volume > 0 for *_, volume in first)


@pytest.mark.parametrize(
    ("duration", "bar_size"),
    [("1 Y", "1 secs"), ("3600 S", "1 secs"), ("2 D", "5 secs")],
)
def test_a_duration_too_long_for_the_bar_size_is_error_162(ib, duration, bar_size):
    errors = []
    ib.errorEvent += lambda req_id, code, message, contract: errors.append((req_id, code, message))
    bars = ib.reqHistoricalData(stock(ib, "AAPL"), "", duration, bar_size, "TRADES", True)
    # ib_insync ends the refused request with no bars; IB's reason carries the request's id.
    assert list(bars) == []
    assert errors == [
        (bars.reqId, 162, "Historical Market Data Service error message:Time length exceed max.")
    ]


def test_the_longest_duration_ib_allows_for_a_bar_size_is_served(ib):
    end = datetime(2024, 6, 14, 19, 30, tzinfo=UTC)  # 15:30 New York, in the session
    bars = ib.reqHistoricalData(stock(ib, "AAPL"), end, "1800 S", "1 secs", "TRADES", True)
    assert len(bars) == 1800


def test_history_from_a_csv_file_per_symbol(tmp_path):
    (tmp_path / "ACME.csv").write_text(
        "date,open,high,low,close,volume\n"
        "2024-03-04,10.00,10.50,9.90,10.40,1200\n"
        "2024-03-05,10.40,10.80,10.30,10.75,900\n"
        "2024-03-06,10.75,10.90,10.10,10.20,1500\n"
        "2024-03-07,10.20,10.35,10.00,10.30,700\n"
        "2024-03-08,10.30,11.00,10.25,10.95,2100\n"
    )
    server = start_gateway(seed=7, bars_dir=tmp_path)
    try:
        client = connect(server)
        acme = stock(client, "ACME")
        assert acme.conId > 0
        assert daily_bars(client, acme) == [
            (date(2024, 3, 4), 10.00, 10.50, 9.90, 10.40, 1200),
            (date(2024, 3, 5), 10.40, 10.80, 10.30, 10.75, 900),
            (date(2024, 3, 6), 10.75, 10.90, 10.10, 10.20, 1500),
            (date(2024, 3, 7), 10.20, 10.35, 10.00, 10.30, 700),
            (date(2024, 3, 8), 10.30, 11.00, 10.25, 10.95, 2100),
        ]
        weekly = client.reqHistoricalData(acme, "", "1 M", "1 week", "TRADES", True)
        assert [(b.open, b.high, b.low, b.close, b.volume) for b in weekly] == [
            (10.00, 11.00, 9.90, 10.95, 6400)
        ]
        assert server.price("ACME") == D("10.95")  # trading starts at the file's last close
        client.disconnect()
    finally:
        server.stop()


@pytest.mark.parametrize(("data_type", "delayed"), [(1, False), (3, True)])
def test_market_data_snapshots_and_streams_follow_the_price(gateway, data_type, delayed):
    ib = connect(gateway)
    try:
        ib.reqMarketDataType(data_type)
        spy = stock(ib, "SPY")
        gateway.set_price("SPY", "501.25")
        [snapshot] = ib.reqTickers(spy)
        assert (snapshot.last, snapshot.bid, snapshot.ask) == (501.25, 501.24, 501.26)
        assert snapshot.marketDataType == data_type  # delayed data says so (tick types 66+)
        assert snapshot.close > 0 and snapshot.high >= snapshot.low > 0

        streaming = ib.reqMktData(spy, "", False, False)
        assert until(ib, lambda: streaming.last == 501.25)
        gateway.set_price("SPY", "499.10")
        assert until(ib, lambda: streaming.last == 499.10)
        assert streaming.marketDataType == data_type
        assert (streaming.marketDataType in (3, 4)) is delayed
    finally:
        ib.disconnect()


def test_a_pinned_clock_starts_after_the_close_and_runs_on():
    elapsed = iter([100.0, 100.0, 161.5])
    clock = PinnedClock(date(2025, 3, 14), monotonic=lambda: next(elapsed))
    assert clock() == datetime(2025, 3, 14, 21, 0, tzinfo=UTC)  # 17:00 EDT
    assert clock() == datetime(2025, 3, 14, 21, 1, 1, 500000, tzinfo=UTC)
    assert PinnedClock(date(2025, 1, 31)).start == datetime(2025, 1, 31, 22, 0, tzinfo=UTC)


def test_make_clock_takes_a_date_a_moment_or_a_callable():
    fixed = datetime(2024, 6, 14, 21, 0, tzinfo=UTC)
    assert make_clock(fixed)() == fixed
    assert isinstance(make_clock(date(2024, 6, 14)), PinnedClock)
    assert make_clock(lambda: fixed)() == fixed
    with pytest.raises(ValueError, match="timezone-aware"):
        make_clock(datetime(2024, 6, 14, 21, 0))
    with pytest.raises(TypeError, match="not str"):
        make_clock("2024-06-14")


def test_a_pinned_holiday_or_weekend_shows_the_last_session_before_it():
    calendar = SessionCalendar()
    assert calendar.last_started(after_the_close(date(2025, 12, 25))) == date(2025, 12, 24)
    assert calendar.last_started(after_the_close(date(2025, 3, 16))) == date(2025, 3, 14)
