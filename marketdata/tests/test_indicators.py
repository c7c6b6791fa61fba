"""Indicator values against numbers worked out by hand, against TA-Lib (a test-only dependency;
those tests are skipped where it is missing) and, for SuperTrend, against a plain loop."""

import math

import numpy as np
import pytest

from marketdata.indicators import atr, bollinger, ema, macd, rsi, sma, supertrend
from marketdata.tests.series import random_walk

NAN = math.nan
CLOSES = [10, 11, 12, 11, 10, 12, 14, 13, 15, 16]


def same(ours, expected):
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12, equal_nan=True)


# --- by hand --------------------------------------------------------------------------------
def test_sma_by_hand():
    # (10+11+12)/3 = 11, (11+12+11)/3 = 34/3, (12+11+10)/3 = 11, (11+10+12)/3 = 11,
    # (10+12+14)/3 = 12, (12+14+13)/3 = 13, (14+13+15)/3 = 14, (13+15+16)/3 = 44/3
    same(sma(CLOSES, 3), [NAN, NAN, 11, 34 / 3, 11, 11, 12, 13, 14, 44 / 3])
    same(sma(CLOSES, 10), [NAN] * 9 + [12.4])  # 124 / 10
    same(sma(CLOSES, 1), CLOSES)


def test_ema_by_hand():
    # alpha = 2 / (3 + 1) = 0.5, seeded with the SMA of the first three (11):
    # 11 + (11-11)/2 = 11; 11 + (10-11)/2 = 10.5; 10.5 + (12-10.5)/2 = 11.25;
    # 11.25 + (14-11.25)/2 = 12.625; 12.625 + (13-12.625)/2 = 12.8125;
    # 12.8125 + (15-12.8125)/2 = 13.90625; 13.90625 + (16-13.90625)/2 = 14.953125
    same(
        ema(CLOSES, 3),
        [NAN, NAN, 11, 11, 10.5, 11.25, 12.625, 12.8125, 13.90625, 14.953125],
    )


def test_rsi_by_hand():
    # Changes into bars 1..5: +1 +1 -1 -1 +2. Bar 3: gains (1+1+0)/3 = 2/3, losses 1/3,
    # RSI = 100 * (2/3) / 1. Bar 4 (-1): gains (2/3*2 + 0)/3 = 4/9, losses (1/3*2 + 1)/3 = 5/9,
    # RSI = 100 * 4/9. Bar 5 (+2): gains (4/9*2 + 2)/3 = 26/27, losses (5/9*2)/3 = 10/27,
    # RSI = 100 * 26/36.
    values = rsi(CLOSES, 3)
    same(values[:6], [NAN, NAN, NAN, 200 / 3, 400 / 9, 2600 / 36])
    assert rsi([5, 5, 5, 5, 5], 3)[3:].tolist() == [0.0, 0.0]  # no move at all: 0, as TA-Lib


def test_atr_and_bollinger_by_hand():
    high, low, close = [10, 11, 12, 11.5], [8, 9, 9.5, 10], [9, 10, 11, 10.5]
    # True ranges from bar 1: max(11-9, |11-9|, |9-9|) = 2, max(2.5, |12-10|, |9.5-10|) = 2.5,
    # max(1.5, |11.5-11|, |10-11|) = 1.5. ATR(2): (2 + 2.5)/2 = 2.25, then (2.25 + 1.5)/2.
    same(atr(high, low, close, 2), [NAN, NAN, 2.25, 1.875])
    # Bars 10, 11, 12: mean 11, population variance (1 + 0 + 1)/3, two deviations each side.
    upper, middle, lower = bollinger(CLOSES[:3], 3, 2.0)
    width = 2 * math.sqrt(2 / 3)
    same([upper[2], middle[2], lower[2]], [11 + width, 11, 11 - width])


def test_supertrend_by_hand():
    # Period 1, multiplier 1: the band is the bar's true range around its midpoint.
    high = [10, 11, 13, 12, 9]
    low = [9, 10, 11, 10, 8]
    close = [9.5, 10.5, 12.5, 10.5, 8.5]
    line, direction = supertrend(high, low, close, 1, 1.0)
    # Bar 1: TR 1.5, hl2 10.5: bands 12 / 9; starts down, on the upper band.
    # Bar 2: TR 2.5 -> ATR 2.5 (period 1), hl2 12: basic 14.5 / 9.5; upper stays 12 (the
    #   basic one is higher), lower rises to 9.5; close 12.5 > 12: the trend turns up.
    # Bar 3: ATR 2.5, hl2 11: basic 13.5 / 8.5; the close 12.5 above the upper band (12)
    #   resets it to 13.5; lower stays 9.5; close 10.5 >= 9.5: still up, on the lower band.
    # Bar 4: ATR 2.5, hl2 8.5: basic 11 / 6; upper falls to 11; lower stays 9.5;
    #   close 8.5 < 9.5: the trend turns down, on the upper band.
    same(line, [NAN, 12, 9.5, 9.5, 11])
    same(direction, [NAN, -1, 1, 1, -1])


# --- warm-up and arguments ------------------------------------------------------------------
def test_warm_up_lengths():
    high, low, close = random_walk(300)

    def leading_nans(values):
        return int(np.argmax(~np.isnan(values)))

    assert leading_nans(sma(close, 20)) == 19
    assert leading_nans(ema(close, 12)) == 11
    assert leading_nans(rsi(close, 14)) == 14
    assert [leading_nans(v) for v in macd(close, 12, 26, 9)] == [33, 33, 33]
    assert leading_nans(atr(high, low, close, 14)) == 14
    assert [leading_nans(v) for v in bollinger(close, 20)] == [19, 19, 19]
    assert [leading_nans(v) for v in supertrend(high, low, close, 10)] == [10, 10]
    for values in (sma(close, 20), rsi(close), *macd(close), atr(high, low, close)):
        assert not np.isnan(values[-1])
    # Too few bars: all NaN, never an error.
    assert np.isnan(sma([1.0, 2.0], 3)).all() and len(sma([1.0, 2.0], 3)) == 2
    assert all(np.isnan(v).all() for v in macd(close[:30]))
    assert all(np.isnan(v).all() for v in supertrend(high[:5], low[:5], close[:5], 10))


def test_a_gap_in_the_closes_is_never_read_as_a_value():
    high, low, close = random_walk(300)
    close = close.copy()
    close[250] = NAN

    # RSI 0 would read as deeply oversold: from the gap on there is no RSI at all.
    assert np.isnan(rsi(close, 14)[250:]).all()
    line, direction = supertrend(high, low, close, 10)
    assert np.isnan(line[250]) and np.isnan(direction[250])
    for values in (sma(close, 20), ema(close, 12), *macd(close), *bollinger(close, 20)):
        assert np.isnan(values[250:270]).all()


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda x: sma(x, 0), "period"),
        (lambda x: ema(x, 2.5), "period"),
        (lambda x: rsi(x, -3), "period"),
        (lambda x: macd(x, fast=26, slow=12), "fast must be shorter than slow"),
        (lambda x: macd(x, signal=0), "signal"),
        (lambda x: bollinger(x, 20, stddev=-1), "stddev"),
        (lambda x: bollinger(x, True), "period"),
        (lambda x: atr(x, x, x, period=0), "period"),
        (lambda x: atr(x, x[:-1], x), "high, low and close"),
        (lambda x: supertrend(x, x, x, 10, multiplier=0), "multiplier"),
        (lambda x: supertrend(x, x, x, "10"), "period"),
    ],
)
def test_bad_arguments_name_the_parameter(call, named):
    with pytest.raises(ValueError, match=named):
        call(np.linspace(1.0, 2.0, 50))


# --- TA-Lib ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def talib():
    return pytest.importorskip("talib")


@pytest.fixture(scope="module")
def walk():
    return random_walk(4000, seed=20240614)


def agrees(ours, theirs):
    """Equal within 1e-9 relative after the same warm-up (NaN where TA-Lib has NaN). The
    absolute 1e-9 only matters where a value crosses zero (MACD), on prices near 100."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert np.array_equal(np.isnan(ours), np.isnan(theirs))
    assert (~np.isnan(theirs)).sum() > 3700  # compared on thousands of bars, not a few
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-9, equal_nan=True)


@pytest.mark.parametrize("period", [2, 14, 20, 200])
def test_sma_and_ema_match_talib(talib, walk, period):
    close = walk[2]
    agrees(sma(close, period), talib.SMA(close, period))
    agrees(ema(close, period), talib.EMA(close, period))


@pytest.mark.parametrize("period", [2, 14, 30])
def test_rsi_and_atr_match_talib(talib, walk, period):
    high, low, close = walk
    agrees(rsi(close, period), talib.RSI(close, period))
    agrees(atr(high, low, close, period), talib.ATR(high, low, close, period))


@pytest.mark.parametrize(("fast", "slow", "signal"), [(12, 26, 9), (5, 35, 5), (3, 10, 16)])
def test_macd_matches_talib(talib, walk, fast, slow, signal):
    close = walk[2]
    for ours, theirs in zip(
        macd(close, fast, slow, signal), talib.MACD(close, fast, slow, signal), strict=True
    ):
        agrees(ours, theirs)


@pytest.mark.parametrize(("period", "stddev"), [(20, 2.0), (5, 1.5), (50, 2.5)])
def test_bollinger_matches_talib(talib, walk, period, stddev):
    close = walk[2]
    for ours, theirs in zip(
        bollinger(close, period, stddev),
        talib.BBANDS(close, period, stddev, stddev, 0),
        strict=True,
    ):
        agrees(ours, theirs)


# --- SuperTrend against a plain loop --------------------------------------------------------
def reference_supertrend(high, low, close, period, multiplier):
    """The definition, one bar at a time in plain Python (clear and slow)."""
    n = len(close)
    line, direction = [NAN] * n, [NAN] * n
    ranges = [NAN] + [
        max(high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1]))
        for i in range(1, n)
    ]
    average = sum(ranges[1 : period + 1]) / period  # Wilder's ATR at bar ``period``
    upper = lower = None
    up = False
    for i in range(period, n):
        if i > period:
            average = (average * (period - 1) + ranges[i]) / period
        middle = (high[i] + low[i]) / 2
        basic_upper, basic_lower = middle + multiplier * average, middle - multiplier * average
        if upper is None:
            upper, lower = basic_upper, basic_lower
        else:
            if basic_upper < upper or close[i - 1] > upper:
                upper = basic_upper
            if basic_lower > lower or close[i - 1] < lower:
                lower = basic_lower
            up = close[i] >= lower if up else close[i] > upper
        line[i] = lower if up else upper
        direction[i] = 1.0 if up else -1.0
    return line, direction


@pytest.mark.parametrize(("period", "multiplier"), [(10, 3.0), (7, 1.0), (3, 0.5)])
def test_supertrend_matches_the_plain_loop(walk, period, multiplier):
    high, low, close = walk
    line, direction = supertrend(high, low, close, period, multiplier)
    expected_line, expected_direction = reference_supertrend(
        high.tolist(), low.tolist(), close.tolist(), period, multiplier
    )
    np.testing.assert_array_equal(direction, expected_direction)
    np.testing.assert_allclose(line, expected_line, rtol=1e-12, equal_nan=True)
    flips = np.count_nonzero(np.diff(direction[period:]))
    assert flips > 20  # the walk trends both ways: the test exercises turns, not one trend


# --- long series ----------------------------------------------------------------------------
def test_moving_windows_stay_exact_across_the_periodic_re_sum():
    """Moving sums and Bollinger's deviations slide bar by bar and are computed afresh every
    RESUM bars: the values on both sides of each re-sum equal the windows' own mean and
    standard deviation, computed directly, over prices that wander from 10,000 to 100,000."""
    from numpy.lib.stride_tricks import sliding_window_view

    from marketdata.kernels import RESUM

    close = random_walk(3 * RESUM + 100, seed=7)[2] * 1000.0
    tolerance = 1e-8 * close.max()  # a hundred-millionth of the price level
    for period in (1, 2, 20, 201):
        windows = sliding_window_view(close, period)
        means, widths = windows.mean(axis=1), 2.0 * windows.std(axis=1)
        np.testing.assert_allclose(sma(close, period)[period - 1 :], means, rtol=1e-12)
        upper, middle, lower = bollinger(close, period, 2.0)
        np.testing.assert_allclose(middle[period - 1 :], means, rtol=1e-12)
        np.testing.assert_allclose((upper - middle)[period - 1 :], widths, atol=tolerance)
        np.testing.assert_allclose((middle - lower)[period - 1 :], widths, atol=tolerance)
    assert bollinger(close, 1, 2.0)[0][5] == close[5]  # one bar: no width at all


def test_any_array_like_input():
    """Lists of ints, strided views and float32 arrays give the same values as float64."""
    high, low, close = random_walk(600, seed=3)
    strided = np.repeat(close, 2)[::2]
    assert not strided.flags.c_contiguous
    same(ema(strided, 10), ema(close, 10))
    same(rsi(close.astype(np.float32), 14), rsi(close.astype(np.float32).astype(float), 14))
    same(sma([1, 2, 3, 4], 2), [NAN, 1.5, 2.5, 3.5])
    line, direction = supertrend(list(high), list(low), list(close), 10, 3.0)
    same(line, supertrend(high, low, close, 10, 3.0)[0])
