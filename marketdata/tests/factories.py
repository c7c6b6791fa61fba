from datetime import UTC, datetime, timedelta

import factory

from marketdata.models import Code, OhlcvBar


class CodeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Code

    symbol = factory.Sequence(lambda n: f"SYM{n}")
    conid = factory.Sequence(lambda n: 900000 + n)
    exchange = "SMART"


class OhlcvBarFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OhlcvBar

    ticker = factory.SubFactory(CodeFactory)
    timeframe = "1Day"
    timestamp = factory.Sequence(
        lambda n: datetime(2024, 1, 1, 14, 30, tzinfo=UTC) + timedelta(days=n)
    )
    open = 100.0
    high = 101.0
    low = 99.0
    close = 100.5
    volume = 1000
    source = "ib"


# Noise seeds chosen so that the offline rules see a clear picture at the last bar: "up" is
# bullish on both timeframes with RSI under 70, "down" bearish with RSI over 30, "flat" mixed.
TREND_SEEDS = {"up": 17, "down": 15, "flat": 10}
# (drift, noise) per bar: weekly bars move about five times as far as daily ones.
TIMEFRAME_MOVES = {"1 day": (0.002, 0.01), "1 week": (0.01, 0.03)}


def market_document(*, trend="up", bar="1 day", bars=260, start=100.0):
    """A cached market-data document (OHLCV columns and the real indicator set) of a series
    that rises (``"up"``), falls (``"down"``) or wanders (``"flat"``)."""
    from datetime import UTC, datetime, timedelta

    import numpy as np

    from marketdata.indicators import indicator_set

    drift, noise = TIMEFRAME_MOVES.get(bar, TIMEFRAME_MOVES["1 day"])
    sign = {"up": 1, "down": -1, "flat": 0}[trend]
    moves = sign * drift + np.random.default_rng(TREND_SEEDS[trend]).normal(0, noise, bars)
    close = start * np.exp(np.cumsum(moves))
    open_ = np.concatenate([[start], close[:-1]])
    high = np.maximum(open_, close) * 1.004
    low = np.minimum(open_, close) * 0.996
    volume = np.full(bars, 1_000_000.0)
    first = datetime(2025, 1, 1, tzinfo=UTC)
    return {
        "bars": {
            "time": [(first + timedelta(days=i)).isoformat() for i in range(bars)],
            "open": open_.tolist(),
            "high": high.tolist(),
            "low": low.tolist(),
            "close": close.tolist(),
            "volume": volume.tolist(),
        },
        "indicators": indicator_set(open_, high, low, close, volume),
    }


def cache_market_data(code, *, period, bar, trend="up"):
    """A fresh cache row, so a run reads it without asking the broker."""
    from marketdata.models import MarketData

    return MarketData.objects.create(
        conid=code.conid, period=period, bar=bar, data=market_document(trend=trend, bar=bar)
    )


def cache_run_bars(code, *, trend="up", gateway=None):
    """Fresh daily (1 Y) and weekly (2 Y) bars of ``code`` in the cache, as the two-indicator
    workflow reads them; with a ``gateway``, IB's live price is their last daily close."""
    cache_market_data(code, period="1 Y", bar="1 day", trend=trend)
    cache_market_data(code, period="2 Y", bar="1 week", trend=trend)
    if gateway is not None:
        live_at_cached_close(gateway, code)


def live_at_cached_close(gateway, code, *, bar="1 day"):
    """Move the loopback gateway's live price of ``code`` (a code resolved at that gateway) to
    the last close of its newest cached ``bar`` bars: IB's price now agrees with the bars a run
    is shown, as it does when the cache is fresh. Returns the price set."""
    from decimal import Decimal

    from marketdata.models import MarketData

    row = MarketData.objects.filter(conid=code.conid, bar=bar).order_by("-created_at").first()
    close = Decimal(str(row.data["bars"]["close"][-1])).quantize(Decimal("0.01"))
    gateway.set_price(code.symbol, close)
    return close
