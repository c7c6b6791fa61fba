"""The bar store's table refuses what seed 004 says a bar cannot be."""

import pytest
from django.db import IntegrityError, transaction

from marketdata.models import OhlcvBar
from marketdata.tests.factories import CodeFactory, OhlcvBarFactory

pytestmark = pytest.mark.django_db

BAD_BARS = [
    # A high under the low is under the open or over the low's, so two rules refuse it.
    ({"high": 98.0}, "ohlcv_(high_gte_low|high_gte_open|high_gte_close|low_lte_open)"),
    ({"open": 101.5}, "ohlcv_high_gte_open"),
    ({"close": 101.5}, "ohlcv_high_gte_close"),
    ({"open": 98.5}, "ohlcv_low_lte_open"),
    ({"close": 98.5}, "ohlcv_low_lte_close"),
    ({"open": 0.0, "low": 0.0}, "ohlcv_(open|low)_positive"),
    (
        {"low": -1.0, "open": -1.0, "close": -1.0, "high": -1.0},
        "ohlcv_(open|high|low|close)_positive",
    ),
    ({"volume": -1}, "ohlcv_volume_not_negative"),
    ({"timeframe": "2Day"}, "ohlcv_timeframe_valid"),
    ({"source": "alpaca"}, "ohlcv_source_valid"),
]


@pytest.mark.parametrize(("fields", "constraint"), BAD_BARS)
def test_the_database_refuses_a_bad_bar(fields, constraint):
    with pytest.raises(IntegrityError, match=f'check constraint "{constraint}"'):
        with transaction.atomic():
            OhlcvBarFactory(**fields)

    assert not OhlcvBar.objects.exists()


def test_a_bar_is_stored_once_per_code_timeframe_and_time():
    bar = OhlcvBarFactory()
    OhlcvBarFactory(ticker=bar.ticker, timeframe="1Hour", timestamp=bar.timestamp)

    with pytest.raises(IntegrityError, match="uq_ohlcv_ticker_timeframe_ts"), transaction.atomic():
        OhlcvBarFactory(ticker=bar.ticker, timestamp=bar.timestamp)


def test_deleting_a_code_deletes_its_bars():
    code = CodeFactory()
    OhlcvBarFactory(ticker=code)

    code.delete()

    assert not OhlcvBar.objects.exists()


def test_a_code_has_seed_004s_name_and_is_active():
    code = CodeFactory(name="Apple Inc.")

    assert (code.name, code.is_active) == ("Apple Inc.", True)
