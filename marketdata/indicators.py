"""Technical indicators on NumPy arrays, with TA-Lib's definitions (same values after the
warm-up, NaN during it).

Each function checks its arguments, allocates the result and hands the bars to its compiled
loop in ``marketdata.kernels`` (numba): one pass per indicator, as TA-Lib runs in C, with no
per-bar Python on any path (see bench/indicators.py for a million bars beside TA-Lib).
"""

import math
from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np

from marketdata import kernels


def _floats(values):
    return np.ascontiguousarray(values, dtype=np.float64)


def _period(name, value):
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a whole number of bars, at least 1 (got {value!r})")
    return int(value)


def _positive(name, value):
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 < value < math.inf:
        raise ValueError(f"{name} must be a positive number (got {value!r})")
    return float(value)


def _same_length(high, low, close):
    high, low, close = _floats(high), _floats(low), _floats(close)
    if not len(high) == len(low) == len(close):
        raise ValueError(
            f"high, low and close must have one value per bar (got {len(high)}, {len(low)} "
            f"and {len(close)})"
        )
    return high, low, close


def sma(values, period):
    values = _floats(values)
    out = np.empty(len(values))
    kernels.moving_mean(values, _period("period", period), out)
    return out


def ema(values, period):
    """EMA seeded with the simple mean of the first ``period`` values (TA-Lib's default)."""
    period = _period("period", period)
    values = _floats(values)
    out = np.empty(len(values))
    kernels.smooth(values, 2.0 / (period + 1), period - 1, period, out)
    return out


def rsi(close, period=14):
    """Wilder's RSI: averages seeded with the simple mean of the first ``period`` changes."""
    close = _floats(close)
    out = np.empty(len(close))
    kernels.rsi(close, _period("period", period), out)
    return out


def macd(close, fast=12, slow=26, signal=9):
    """TA-Lib's MACD: both EMAs start at the bar where the slow one can (``slow - 1``), the
    signal line is an EMA of the MACD line, and all three begin at ``slow + signal - 2``.
    Returns (line, signal line, histogram)."""
    fast, slow = _period("fast", fast), _period("slow", slow)
    signal = _period("signal", signal)
    if fast >= slow:
        raise ValueError(f"fast must be shorter than slow (got fast={fast}, slow={slow})")
    close = _floats(close)
    line, signal_line, histogram = (np.empty(len(close)) for _ in range(3))
    kernels.macd(close, fast, slow, signal, line, signal_line, histogram)
    return line, signal_line, histogram


def atr(high, low, close, period=14):
    """Wilder's ATR: the first is the mean of the first ``period`` true ranges (bars 1..n)."""
    period = _period("period", period)
    high, low, close = _same_length(high, low, close)
    out = np.empty(len(close))
    kernels.atr(high, low, close, period, out)
    return out


def bollinger(close, period=20, stddev=2.0):
    """Middle SMA with bands ``stddev`` population standard deviations away (BBANDS).
    Returns (upper, middle, lower)."""
    period = _period("period", period)
    stddev = _positive("stddev", stddev)
    close = _floats(close)
    upper, middle, lower = (np.empty(len(close)) for _ in range(3))
    kernels.bollinger(close, period, stddev, upper, middle, lower)
    return upper, middle, lower


def supertrend(high, low, close, period=10, multiplier=3.0):
    """SuperTrend line and direction (+1 up, -1 down), the common definition:

    basic bands ``hl2 +/- multiplier x ATR(period)``; the final upper band only falls (it
    takes the basic band when that is lower, or when the close broke above it), the final
    lower band only rises; the trend turns up when the close rises above the final upper
    band and down when it falls below the final lower band. It starts down at the first bar
    with an ATR, as most charting packages do.
    """
    period = _period("period", period)
    multiplier = _positive("multiplier", multiplier)
    high, low, close = _same_length(high, low, close)
    line, direction = np.empty(len(close)), np.empty(len(close))
    kernels.supertrend(high, low, close, period, multiplier, line, direction)
    return line, direction


def _json(values):
    return [None if np.isnan(v) else round(float(v), 6) for v in values]


# Each name of the chart set: (the group computed together, the index in the group's answer).
_GROUPS = {
    "sma_20": lambda h, lo, c: (sma(c, 20),),
    "sma_50": lambda h, lo, c: (sma(c, 50),),
    "sma_200": lambda h, lo, c: (sma(c, 200),),
    "ema_12": lambda h, lo, c: (ema(c, 12),),
    "ema_26": lambda h, lo, c: (ema(c, 26),),
    "macd": lambda h, lo, c: macd(c),
    "rsi_14": lambda h, lo, c: (rsi(c, 14),),
    "atr_14": lambda h, lo, c: (atr(h, lo, c, 14),),
    "bollinger": lambda h, lo, c: bollinger(c),
    "supertrend": lambda h, lo, c: supertrend(h, lo, c),
}
INDICATOR_NAMES = {
    "sma_20": ("sma_20", 0), "sma_50": ("sma_50", 0), "sma_200": ("sma_200", 0),
    "ema_12": ("ema_12", 0), "ema_26": ("ema_26", 0), "macd": ("macd", 0),
    "macd_signal": ("macd", 1), "macd_hist": ("macd", 2), "rsi_14": ("rsi_14", 0),
    "atr_14": ("atr_14", 0), "bb_upper": ("bollinger", 0), "bb_middle": ("bollinger", 1),
    "bb_lower": ("bollinger", 2), "supertrend": ("supertrend", 0),
    "supertrend_direction": ("supertrend", 1),
}  # fmt: skip


class LazyIndicatorSet(Mapping):
    """``indicator_set``'s mapping, each indicator computed when first read: a backtest reads
    a few of them at each of thousands of bars."""

    def __init__(self, high, low, close):
        self._columns = (high, low, _floats(close))
        self._groups = {}
        self._values = {}

    def __getitem__(self, name):
        if name not in self._values:
            group, index = INDICATOR_NAMES[name]
            if group not in self._groups:
                self._groups[group] = _GROUPS[group](*self._columns)
            self._values[name] = _json(self._groups[group][index])
        return self._values[name]

    def __iter__(self):
        return iter(INDICATOR_NAMES)

    def __len__(self):
        return len(INDICATOR_NAMES)


def indicator_set(open_, high, low, close, volume):
    """The chart set stored with cached bars, as JSON-ready lists (None during warm-up)."""
    return dict(LazyIndicatorSet(high, low, close))
