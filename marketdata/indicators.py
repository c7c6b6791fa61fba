"""Technical indicators on NumPy arrays, with TA-Lib's definitions (same values after the
warm-up, NaN during it).

Recursive smoothing (EMA, Wilder's RSI and ATR, MACD) runs through ``scipy.signal.lfilter``, a
compiled filter seeded with the simple average TA-Lib starts from; moving sums are built by
doubling (sums of 2, 4, 8 ... values, combined by the bits of the period), a handful of
vector passes and more exact than differences of a running total. SuperTrend's final bands
depend on their own previous value and on the close in a way no linear filter expresses; its
ratchet runs over plain floats (see bench/indicators.py for a million bars).
"""

import math
from numbers import Integral, Real

import numpy as np
from scipy.signal import lfilter


def _floats(values):
    return np.asarray(values, dtype=float)


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


def _warmed_up(values, start):
    """``values`` placed from index ``start`` of a series of ``start + len(values)``, NaN before."""
    out = np.empty(start + len(values))
    out[:start] = np.nan
    out[start:] = values
    return out


def _recursive(values, alpha, seed):
    """``seed``, then y[i] = y[i-1] + alpha * (values[i] - y[i-1]) for the values after the first
    (the exponential and Wilder smoothing, in scipy's compiled filter)."""
    out = np.empty(len(values))
    out[0] = seed
    if len(values) > 1:
        out[1:], _ = lfilter([alpha], [1.0, alpha - 1.0], values[1:], zi=[(1.0 - alpha) * seed])
    return out


def _smooth(values, alpha, seed, start):
    """y[start] = seed, then y[i] = y[i-1] + alpha * (x[i] - y[i-1]); NaN before ``start``.

    The filter runs over the whole array from a zero state (so its output is the result, with
    no copy), then the difference at ``start`` is added back with the weight it keeps at each
    later bar, ``(1 - alpha) ** k``, for as long as that is above 1e-20. The values before
    ``start`` must be finite (they are the seed's window in every caller).
    """
    n = len(values)
    if start >= n:
        return np.full(n, np.nan)
    out = lfilter([alpha], [1.0, alpha - 1.0], values)
    decay = 1.0 - alpha
    settled = 1 if decay <= 0 else min(n - start, int(-46.0 / math.log(decay)) + 1)
    out[start : start + settled] += (seed - out[start]) * decay ** np.arange(settled)
    out[start] = seed
    out[:start] = np.nan
    return out


def _window_sums(values, period, out=None):
    """Sums of every ``period`` consecutive values (``len - period + 1`` of them), into ``out``.

    Sums of 2, 4, 8 ... neighbours are each one vector addition of the previous ones shifted
    (in place: fresh arrays cost more than the additions); a period of 20 is then the sum of
    16 and of the 4 that follow.
    """
    count = len(values) - period + 1
    total = np.empty(count) if out is None else out
    started = False
    offset = 0
    block, width = values, 1  # block[i] = sum of values[i : i + width]
    while True:
        if period & width:
            part = block[offset : offset + count]
            if started:
                total += part
            else:
                total[:] = part
                started = True
            offset += width
        if 2 * width > period:
            return total
        if block is values:
            block = values[:-width] + values[width:]
        else:
            block = np.add(block[:-width], block[width:], out=block[:-width])
        width *= 2


def sma(values, period):
    period = _period("period", period)
    values = _floats(values)
    out = np.full(len(values), np.nan)
    if period <= len(values):
        sums = _window_sums(values, period, out=out[period - 1 :])
        sums /= period
    return out


def _ema_from(values, period, seed_end):
    """EMA seeded with the SMA of the ``period`` values ending at ``seed_end``."""
    if seed_end >= len(values) or seed_end < period - 1:
        return np.full(len(values), np.nan)
    seed = values[seed_end - period + 1 : seed_end + 1].mean()
    return _smooth(values, 2.0 / (period + 1), seed, seed_end)


def ema(values, period):
    period = _period("period", period)
    return _ema_from(_floats(values), period, period - 1)


def rsi(close, period=14):
    """Wilder's RSI: averages seeded with the simple mean of the first ``period`` changes."""
    period = _period("period", period)
    close = _floats(close)
    if len(close) <= period:
        return np.full(len(close), np.nan)
    change = np.diff(close)
    gain = np.maximum(change, 0.0)
    loss = gain - change  # exactly max(-change, 0)
    alpha = 1.0 / period
    # change[k] is the move into bar k + 1: the first average belongs to bar ``period``.
    avg_gain = _smooth(gain, alpha, gain[:period].mean(), period - 1)[period - 1 :]
    avg_loss = _smooth(loss, alpha, loss[:period].mean(), period - 1)[period - 1 :]
    out = np.full(len(close), np.nan)
    value = out[period:]
    value[:] = 0.0
    np.add(avg_gain, avg_loss, out=avg_loss)  # the total, in place
    avg_gain *= 100.0
    np.divide(avg_gain, avg_loss, out=value, where=avg_loss > 0)
    return out


def _ema_difference(close, fast, slow, start):
    """EMA(fast) - EMA(slow) from bar ``start`` on, both seeded there, as one filter.

    The difference of two first-order filters is one second-order filter; its state at
    ``start`` is what the two EMAs would carry into the next bar (scipy's transposed direct
    form: z0 = cf*ef - cs*es, z1 = -cf*cs*(ef - es)).
    """
    af, as_ = 2.0 / (fast + 1), 2.0 / (slow + 1)
    cf, cs = 1.0 - af, 1.0 - as_
    ef = close[start - fast + 1 : start + 1].mean()
    es = close[start - slow + 1 : start + 1].mean()
    line = np.empty(len(close) - start)
    line[0] = ef - es
    if len(line) > 1:
        line[1:], _ = lfilter(
            [af - as_, as_ * cf - af * cs],
            [1.0, -(cf + cs), cf * cs],
            close[start + 1 :],
            zi=[cf * ef - cs * es, -cf * cs * (ef - es)],
        )
    return line


def macd(close, fast=12, slow=26, signal=9):
    """TA-Lib's MACD: both EMAs start at the bar where the slow one can (``slow - 1``), the
    signal line is an EMA of the MACD line, and all three begin at ``slow + signal - 2``."""
    fast, slow = _period("fast", fast), _period("slow", slow)
    signal = _period("signal", signal)
    if fast >= slow:
        raise ValueError(f"fast must be shorter than slow (got fast={fast}, slow={slow})")
    close = _floats(close)
    n = len(close)
    start = slow - 1
    first = start + signal - 1
    if first >= n:
        return np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    line = _ema_difference(close, fast, slow, start)
    signal_line = _recursive(line[signal - 1 :], 2.0 / (signal + 1), line[:signal].mean())
    line = line[signal - 1 :]
    return (
        _warmed_up(line, first),
        _warmed_up(signal_line, first),
        _warmed_up(line - signal_line, first),
    )


def _ranges(high, low, close):
    """True ranges from the second bar on: the greatest of high-low, |high-prev|, |low-prev|,
    which is max(high, prev) - min(low, prev) (two vector passes, the same subtraction)."""
    previous = close[:-1]
    return np.maximum(high[1:], previous), np.minimum(low[1:], previous)


def true_range(high, low, close):
    high, low, close = _same_length(high, low, close)
    out = np.full(len(close), np.nan)  # TA-Lib's TRANGE starts at the second bar
    if len(close):
        top, bottom = _ranges(high, low, close)
        np.subtract(top, bottom, out=out[1:])
    return out


def atr(high, low, close, period=14):
    """Wilder's ATR: the first is the mean of the first ``period`` true ranges (bars 1..n)."""
    period = _period("period", period)
    high, low, close = _same_length(high, low, close)
    if len(close) <= period:
        return np.full(len(close), np.nan)
    tr = np.empty(len(close))
    tr[0] = 0.0  # before the seed's window: filtered, then replaced by NaN
    top, bottom = _ranges(high, low, close)
    np.subtract(top, bottom, out=tr[1:])
    return _smooth(tr, 1.0 / period, tr[1 : period + 1].mean(), period)


def bollinger(close, period=20, stddev=2.0):
    """Middle SMA with bands ``stddev`` population standard deviations away (BBANDS)."""
    period = _period("period", period)
    stddev = _positive("stddev", stddev)
    close = _floats(close)
    if period > len(close):
        nan = np.full(len(close), np.nan)
        return nan, nan.copy(), nan.copy()
    centred = close - close[0]  # keeps the sums of squares small
    mean = _window_sums(centred, period)
    mean /= period
    variance = _window_sums(centred * centred, period)
    variance /= period
    variance -= mean * mean
    np.maximum(variance, 0.0, out=variance)
    width = np.sqrt(variance, out=variance)
    width *= stddev
    mean += close[0]
    return (
        _warmed_up(mean + width, period - 1),
        _warmed_up(mean, period - 1),
        _warmed_up(mean - width, period - 1),
    )


def _final_bands(upper_basic, lower_basic, close):
    """SuperTrend's ratchet: the upper band only falls (it takes the basic band when that is
    lower, or when the previous close broke above it), the lower band only rises.

    Each value depends on the one before and on whether the close crossed it, so the resets
    cannot be found ahead; the loop runs over plain floats, the rest is vectorised.
    """
    upper_basic, lower_basic = upper_basic.tolist(), lower_basic.tolist()
    closes = close.tolist()
    upper, lower = upper_basic[0], lower_basic[0]
    uppers, lowers = [upper], [lower]
    keep_upper, keep_lower = uppers.append, lowers.append
    for new_upper, new_lower, previous in zip(
        upper_basic[1:], lower_basic[1:], closes, strict=False
    ):
        if new_upper < upper or previous > upper:
            upper = new_upper
        if new_lower > lower or previous < lower:
            lower = new_lower
        keep_upper(upper)
        keep_lower(lower)
    return np.array(uppers), np.array(lowers)


def _trend_up(close, upper, lower):
    """The trend of every bar, starting down: a down trend turns up when the close rises above
    the upper band, an up trend turns down when it falls below the lower band.

    A bar where both tests agree decides the trend by itself; one where the close is inside
    both bands keeps it; one where it is above the upper and below the lower (crossed bands)
    flips it. So the trend is the last deciding bar's, flipped once per flipping bar since.
    """
    above_upper = close > upper
    above_lower = close >= lower
    decides = above_upper == above_lower
    decides[0] = True
    decided = np.where(decides, above_upper, False)
    decided[0] = False
    flips = np.cumsum(above_upper & ~above_lower)
    last = np.maximum.accumulate(np.where(decides, np.arange(len(close)), 0))
    return decided[last] ^ ((flips - flips[last]) % 2 == 1)


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
    n = len(close)
    if n <= period:
        return np.full(n, np.nan), np.full(n, np.nan)
    band = atr(high, low, close, period)[period:]
    band *= multiplier
    hl2 = (high[period:] + low[period:]) / 2
    close = close[period:]
    upper, lower = _final_bands(hl2 + band, hl2 - band, close)
    up = _trend_up(close, upper, lower)
    return (
        _warmed_up(np.where(up, lower, upper), period),
        _warmed_up(np.where(up, 1.0, -1.0), period),
    )


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
