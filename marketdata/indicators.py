"""Technical indicators on NumPy arrays, with TA-Lib's definitions (same values after the
warm-up, NaN during it).

Recursive smoothing (EMA, Wilder's RSI and ATR) runs through ``scipy.signal.lfilter``, a
compiled filter seeded with the simple average TA-Lib starts from, so no Python loop runs per
bar. SuperTrend's final bands depend on their own previous value and the close in a way no
linear filter expresses; it loops over plain floats, which costs well under a millisecond for
the few hundred bars of a cached series (see bench/indicators.py for a million).
"""

import numpy as np
from scipy.signal import lfilter


def _floats(values):
    return np.asarray(values, dtype=float)


def _smooth(values, alpha, seed, start):
    """y[start] = seed, then y[i] = y[i-1] + alpha * (x[i] - y[i-1]); NaN before ``start``."""
    out = np.full(len(values), np.nan)
    if start >= len(values):
        return out
    out[start] = seed
    rest = values[start + 1 :]
    if len(rest):
        out[start + 1 :], _ = lfilter([alpha], [1.0, alpha - 1.0], rest, zi=[(1.0 - alpha) * seed])
    return out


def sma(values, period):
    values = _floats(values)
    out = np.full(len(values), np.nan)
    if period <= len(values):
        sums = np.cumsum(np.insert(values, 0, 0.0))
        out[period - 1 :] = (sums[period:] - sums[:-period]) / period
    return out


def _ema_from(values, period, seed_end):
    """EMA seeded with the SMA of the ``period`` values ending at ``seed_end``."""
    if seed_end >= len(values) or seed_end < period - 1:
        return np.full(len(values), np.nan)
    seed = values[seed_end - period + 1 : seed_end + 1].mean()
    return _smooth(values, 2.0 / (period + 1), seed, seed_end)


def ema(values, period):
    values = _floats(values)
    return _ema_from(values, period, period - 1)


def rsi(close, period=14):
    """Wilder's RSI: averages seeded with the simple mean of the first ``period`` changes."""
    close = _floats(close)
    out = np.full(len(close), np.nan)
    if len(close) <= period:
        return out
    change = np.diff(close)
    gain, loss = np.clip(change, 0, None), np.clip(-change, 0, None)
    alpha = 1.0 / period
    # change[k] is the move into bar k + 1: the first average belongs to bar ``period``.
    avg_gain = _smooth(gain, alpha, gain[:period].mean(), period - 1)
    avg_loss = _smooth(loss, alpha, loss[:period].mean(), period - 1)
    total = avg_gain + avg_loss
    with np.errstate(invalid="ignore", divide="ignore"):
        value = np.where(total > 0, 100.0 * avg_gain / total, 0.0)
    out[period:] = value[period - 1 :]
    return out


def macd(close, fast=12, slow=26, signal=9):
    """TA-Lib's MACD: both EMAs start at the bar where the slow one can (``slow - 1``), the
    signal line is an EMA of the MACD line, and all three begin at ``slow + signal - 2``."""
    close = _floats(close)
    n = len(close)
    nan = np.full(n, np.nan)
    start = slow - 1
    first = start + signal - 1
    if first >= n:
        return nan, nan.copy(), nan.copy()
    line = _ema_from(close, fast, start) - _ema_from(close, slow, start)
    signal_line = np.full(n, np.nan)
    seed = line[start : first + 1].mean()
    signal_line[first:] = _smooth(line[first:], 2.0 / (signal + 1), seed, 0)
    line[:first] = np.nan
    return line, signal_line, line - signal_line


def true_range(high, low, close):
    high, low, close = _floats(high), _floats(low), _floats(close)
    previous = np.concatenate([[np.nan], close[:-1]])
    ranges = np.vstack([high - low, np.abs(high - previous), np.abs(low - previous)])
    out = ranges.max(axis=0)
    out[0] = np.nan  # TA-Lib's TRANGE starts at the second bar
    return out


def atr(high, low, close, period=14):
    """Wilder's ATR: the first is the mean of the first ``period`` true ranges (bars 1..n)."""
    tr = true_range(high, low, close)
    if len(tr) <= period:
        return np.full(len(tr), np.nan)
    return _smooth(tr, 1.0 / period, tr[1 : period + 1].mean(), period)


def bollinger(close, period=20, stddev=2.0):
    """Middle SMA with bands ``stddev`` population standard deviations away (BBANDS)."""
    close = _floats(close)
    middle = sma(close, period)
    centred = close - (close[0] if len(close) else 0.0)  # keeps the running sums small
    squares = sma(centred * centred, period)
    mean = sma(centred, period)
    deviation = np.sqrt(np.clip(squares - mean * mean, 0.0, None))
    return middle + stddev * deviation, middle, middle - stddev * deviation


def supertrend(high, low, close, period=10, multiplier=3.0):
    """SuperTrend line and direction (+1 up, -1 down), the common definition:

    basic bands ``hl2 +/- multiplier x ATR(period)``; the final upper band only falls (it
    takes the basic band when that is lower, or when the close broke above it), the final
    lower band only rises; the trend turns up when the close rises above the final upper
    band and down when it falls below the final lower band. It starts down at the first bar
    with an ATR, as most charting packages do.
    """
    high, low, close = _floats(high), _floats(low), _floats(close)
    n = len(close)
    line = np.full(n, np.nan)
    direction = np.full(n, np.nan)
    band = atr(high, low, close, period)
    if n <= period:
        return line, direction
    hl2 = (high + low) / 2
    upper_basic = (hl2 + multiplier * band).tolist()
    lower_basic = (hl2 - multiplier * band).tolist()
    closes = close.tolist()
    upper, lower = upper_basic[period], lower_basic[period]
    up = False
    lines = [upper]
    ups = [-1.0]
    for i in range(period + 1, n):
        new_upper = upper_basic[i]
        if not (new_upper < upper or closes[i - 1] > upper):
            new_upper = upper
        new_lower = lower_basic[i]
        if not (new_lower > lower or closes[i - 1] < lower):
            new_lower = lower
        upper, lower = new_upper, new_lower
        up = closes[i] >= lower if up else closes[i] > upper
        lines.append(lower if up else upper)
        ups.append(1.0 if up else -1.0)
    line[period:] = lines
    direction[period:] = ups
    return line, direction


def _json(values):
    return [None if np.isnan(v) else round(float(v), 6) for v in values]


def indicator_set(open_, high, low, close, volume):
    """The chart set stored with cached bars, as JSON-ready lists (None during warm-up)."""
    close = _floats(close)
    macd_line, macd_signal, macd_hist = macd(close)
    bb_upper, bb_middle, bb_lower = bollinger(close)
    trend_line, trend_direction = supertrend(high, low, close)
    series = {
        "sma_20": sma(close, 20),
        "sma_50": sma(close, 50),
        "sma_200": sma(close, 200),
        "ema_12": ema(close, 12),
        "ema_26": ema(close, 26),
        "macd": macd_line,
        "macd_signal": macd_signal,
        "macd_hist": macd_hist,
        "rsi_14": rsi(close, 14),
        "atr_14": atr(high, low, close, 14),
        "bb_upper": bb_upper,
        "bb_middle": bb_middle,
        "bb_lower": bb_lower,
        "supertrend": trend_line,
        "supertrend_direction": trend_direction,
    }
    return {name: _json(values) for name, values in series.items()}
