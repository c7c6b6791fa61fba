"""Instruments and the market-data cache against the loopback gateway, over a real socket."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from marketdata.models import Code, MarketData
from marketdata.services import code_resolve, market_data_get, market_data_purge
from marketdata.tests.factories import CodeFactory
from tradingsite.broker import BrokerError, reset_broker
from tradingsite.exceptions import ApplicationError

pytestmark = pytest.mark.django_db


def test_resolve_stores_the_conid_once(gateway):
    code = code_resolve(symbol="aapl")
    assert (code.symbol, code.conid, code.exchange, code.currency) == (
        "AAPL",
        265598,
        "SMART",
        "USD",
    )
    again = code_resolve(symbol="AAPL")
    assert again.pk == code.pk
    assert Code.objects.filter(conid=265598).count() == 1


def test_an_unknown_contract_is_a_clear_error(gateway):
    with pytest.raises(ApplicationError) as refused:
        code_resolve(symbol="AAPL", exchange="NOWHERE")
    assert "symbol" in refused.value.extra
    assert "NOWHERE" in str(refused.value)
    assert not Code.objects.exists()


def test_history_is_fetched_once_then_served_from_the_cache(gateway):
    code = code_resolve(symbol="AAPL")
    first = market_data_get(code=code, period="1 Y", bar="1 day")
    assert first.served_from_cache is False
    bars = first.data["bars"]
    assert 240 <= len(bars["close"]) <= 260
    for low, open_, close, high in zip(
        bars["low"], bars["open"], bars["close"], bars["high"], strict=True
    ):
        assert low <= min(open_, close) and max(open_, close) <= high
    indicators = first.data["indicators"]
    assert len(indicators["sma_20"]) == len(bars["close"])
    assert indicators["sma_20"][18] is None and indicators["sma_20"][19] is not None

    # With the gateway gone, the cache still answers: the broker is not asked again.
    gateway.stop()
    reset_broker()
    second = market_data_get(code=code, period="1 Y", bar="1 day")
    assert second.served_from_cache is True
    assert second.pk == first.pk
    assert MarketData.objects.count() == 1
    assert second.data == first.data


def test_a_cached_document_is_read_from_the_database_once_per_process(
    django_assert_num_queries,
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from marketdata.tests.factories import cache_market_data

    code = CodeFactory(symbol="DOCS")
    cache_market_data(code, period="1 Y", bar="1 day", trend="up")
    with CaptureQueriesContext(connection) as first_read:
        first = market_data_get(code=code, period="1 Y", bar="1 day")
    assert [('"data"' in q["sql"]) for q in first_read.captured_queries] == [False, True]
    with django_assert_num_queries(1) as again:  # the row's id only: the document is kept
        second = market_data_get(code=code, period="1 Y", bar="1 day")
    assert '"data"' not in again.captured_queries[0]["sql"]
    assert second.served_from_cache and second.data == first.data
    # A newer row (the cache refreshed) is read in full.
    newer = cache_market_data(code, period="1 Y", bar="1 day", trend="down")
    third = market_data_get(code=code, period="1 Y", bar="1 day")
    assert third.pk == newer.pk and third.data == newer.data != first.data


def test_a_stale_row_is_fetched_again_and_purged(gateway):
    code = code_resolve(symbol="MSFT")
    stale = market_data_get(code=code, period="6 M", bar="1 day")
    MarketData.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(hours=2))
    fresh = market_data_get(code=code, period="6 M", bar="1 day")
    assert fresh.served_from_cache is False and fresh.pk != stale.pk
    assert market_data_purge() == 1
    assert list(MarketData.objects.values_list("pk", flat=True)) == [fresh.pk]


@pytest.mark.parametrize(
    ("period", "bar", "field"),
    [("1 year", "1 day", "period"), ("1 Y", "1 days", "bar"), ("", "1 day", "period")],
)
def test_bad_period_or_bar_names_the_field(period, bar, field):
    with pytest.raises(ApplicationError) as refused:
        market_data_get(code=CodeFactory(), period=period, bar=bar)
    assert field in refused.value.extra
    assert not MarketData.objects.exists()


def test_a_request_ib_refuses_says_why_in_ibs_words(gateway):
    code = code_resolve(symbol="AAPL")
    # IB serves 1-second bars for at most 30 minutes: a year of them is refused (error 162).
    with pytest.raises(BrokerError) as refused:
        market_data_get(code=code, period="1 Y", bar="1 secs")
    assert str(refused.value) == (
        "IB refused historical data for AAPL 1 Y / 1 secs: error 162, Historical Market Data "
        "Service error message:Time length exceed max."
    )
    assert not MarketData.objects.exists()

    # The refusal is this request's alone: the next one is served.
    assert market_data_get(code=code, period="1 Y", bar="1 day").served_from_cache is False


BAD_BARS = Path(__file__).parent / "bad_bars"  # one bars file per symbol, for the gateway


@pytest.mark.parametrize("gateway", [{"bars_dir": BAD_BARS}], indirect=True)
@pytest.mark.parametrize(
    ("symbol", "message", "field"),
    [
        (
            "GAPCO",
            "IB sent a bad close price for GAPCO at 2024-03-05T00:00:00+00:00: nan.",
            "close",
        ),
        ("ZEROCO", "IB sent a bad low price for ZEROCO at 2024-03-06T00:00:00+00:00: 0.0.", "low"),
        ("NEGCO", "IB sent a bad open price for NEGCO at 2024-03-04T00:00:00+00:00: -1.0.", "open"),
    ],
)
def test_bars_with_a_price_that_is_not_positive_are_refused(gateway, symbol, message, field):
    code = code_resolve(symbol=symbol)
    with pytest.raises(ApplicationError) as refused:
        market_data_get(code=code, period="1 Y", bar="1 day")
    assert str(refused.value).startswith(message)
    assert list(refused.value.extra) == [field]
    assert not MarketData.objects.exists()
