"""The suite's pinned market date: every gateway a test starts stands on it, whatever the day."""

from datetime import date, timedelta

import pytest

from ibgateway.clock import PinnedClock
from ibgateway.sessions import is_session
from tradingsite.broker.ib import ibapi
from tradingsite.broker.loop import ensure_event_loop
from tradingsite.testing.market import DEFAULT_MARKET_DATE, market_date


def ib_client(port, client_id):
    ensure_event_loop()
    client = ibapi.IB()
    client.connect("127.0.0.1", port, clientId=client_id, timeout=5)
    return client


def last_session_on_or_before(day):
    while not is_session(day):
        day -= timedelta(days=1)
    return day


def after_the_close(day):
    """17:00 New York on ``day``, in UTC (EST or EDT as the day has it)."""
    return PinnedClock(day).start


def assert_stands_on(port, day, client_id):
    client = ib_client(port, client_id)
    try:
        assert abs(client.reqCurrentTime() - after_the_close(day)) < timedelta(minutes=5)
        [contract] = client.qualifyContracts(ibapi.Stock("SPY", "SMART", "USD"))
        bars = client.reqHistoricalData(contract, "", "1 M", "1 day", "TRADES", True)
        assert bars[-1].date == last_session_on_or_before(day)
    finally:
        client.disconnect()


def test_the_gateway_fixture_stands_on_the_pinned_date(gateway, pinned_market_date):
    assert pinned_market_date == market_date()
    assert_stands_on(gateway.port, pinned_market_date, client_id=91)


@pytest.mark.django_db(transaction=True)
def test_the_workers_gateway_stands_on_the_pinned_date(celery_worker_process, pinned_market_date):
    worker_gateway, port, _ = celery_worker_process
    assert_stands_on(port, pinned_market_date, client_id=92)


def test_market_date_reads_the_environment_and_names_a_bad_one(monkeypatch):
    monkeypatch.delenv("MARKET_DATE", raising=False)
    assert market_date() == date.fromisoformat(DEFAULT_MARKET_DATE)
    monkeypatch.setenv("MARKET_DATE", "2024-12-25")
    assert market_date() == date(2024, 12, 25)
    monkeypatch.setenv("MARKET_DATE", "25/12/2024")
    with pytest.raises(ValueError) as refused:
        market_date()
    assert str(refused.value) == (
        "MARKET_DATE: '25/12/2024' is not a date written YYYY-MM-DD (e.g. 2025-03-14)"
    )
