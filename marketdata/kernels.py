"""The indicators' compiled loops (numba), one pass over the bars each.

``marketdata.indicators`` checks the arguments and shapes the results; these functions take
contiguous float64 arrays and already-checked parameters, and write into ``out`` arrays the
caller allocates (NaN before the warm-up is filled here). Each loop is the recursion TA-Lib
runs in C, with the smoothing written ``y = decay * y + alpha * x`` (one fused multiply-add
per bar on the chain each value waits for): the values agree with TA-Lib's to rounding (the
tests hold them within 1e-9 relative on thousands of bars).

Moving sums are kept as running totals (as TA-Lib keeps them) and summed afresh every
``RESUM`` bars, so that rounding cannot pile up over a long series.

numba compiles each function on its first call and keeps the machine code in ``__pycache__``
(``cache=True``), so later processes load it instead of compiling again.
"""

import math

from numba import njit

RESUM = 4096
NAN = math.nan
# Fused multiply-adds allowed, no other fast-math: NaN and infinity keep IEEE semantics.
CONTRACT = {"contract"}


@njit(cache=True, nogil=True, fastmath=CONTRACT)
def moving_mean(values, period, out):
    """out[i] = mean of values[i - period + 1 .. i]; NaN before ``period - 1``."""
    n = len(values)
    for i in range(min(period - 1, n)):
        out[i] = NAN
    total = 0.0
    for i in range(n):
        if i >= period and (i - period) % RESUM == 0:
            total = 0.0
            for j in range(i - period + 1, i + 1):
                total += values[j]
        else:
            total += values[i]
            if i >= period:
                total -= values[i - period]
        if i >= period - 1:
            out[i] = total / period


@njit(cache=True, nogil=True, fastmath=CONTRACT)
def _mean(values, start, stop):
    total = 0.0
    for i in range(start, stop):
        total += values[i]
    return total / (stop - start)


@njit(cache=True, nogil=True, fastmath=CONTRACT)
def smooth(values, alpha, start, period, out):
    """y[start] = mean of the ``period`` values ending at ``start``, then
    y[i] = y[i-1] + alpha * (values[i] - y[i-1]) (EMA and Wilder's smoothing); NaN before."""
    n = len(values)
    for i in range(min(start, n)):
        out[i] = NAN
    if start >= n:
        return
    decay = 1.0 - alpha
    last = _mean(values, start - period + 1, start + 1)
    out[start] = last
    for i in range(start + 1, n):
        last = last * decay + alpha * values[i]
        out[i] = last


@njit(cache=True, nogil=True, fastmath=CONTRACT)
def rsi(close, period, out):
    """Wilder's RSI: gains and losses averaged over the first ``period`` changes, then
    smoothed; 100 * gain / (gain + loss), 0 where nothing moved. NaN up to bar ``period``."""
    n = len(close)
    for i in range(min(period, n)):
        out[i] = NAN
    if n <= period:
        return
    gain = 0.0
    loss = 0.0
    for i in range(1, period + 1):
        change = close[i] - close[i - 1]
        if change > 0:
            gain += change
        else:
            loss -= change
    gain /= period
    loss /= period
    alpha = 1.0 / period
    decay = 1.0 - alpha
    for i in range(period, n):
        if i > period:
            change = close[i] - close[i - 1]
            gain = gain * decay + alpha * max(change, 0.0)
            loss = loss * decay + alpha * max(-change, 0.0)
        total = gain + loss
        # Not "total > 0": that would turn a NaN (a gap in the bars) into an RSI of 0.
        out[i] = 100.0 * (gain / total) if total != 0 else 0.0


@njit(cache=True, nogil=True, fastmath=CONTRACT)
def macd(close, fast, slow, signal, line, signal_line, histogram):
    """Both EMAs seeded at bar ``slow - 1`` with their own simple means; the signal line is the
    EMA of the MACD line seeded with the mean of its first ``signal`` values; all three begin
    at ``slow + signal - 2`` (NaN before)."""
    n = len(close)
    start = slow - 1
    first = start + signal - 1
    for i in range(min(first, n)):
        line[i] = NAN
        signal_line[i] = NAN
        histogram[i] = NAN
    if first >= n:
        return
    fast_alpha = 2.0 / (fast + 1)
    slow_alpha = 2.0 / (slow + 1)
    signal_alpha = 2.0 / (signal + 1)
    fast_decay, slow_decay = 1.0 - fast_alpha, 1.0 - slow_alpha
    signal_decay = 1.0 - signal_alpha
    fast_ema = _mean(close, start - fast + 1, start + 1)
    slow_ema = _mean(close, start - slow + 1, start + 1)
    seed = fast_ema - slow_ema
    for i in range(start + 1, first + 1):
        fast_ema = fast_ema * fast_decay + fast_alpha * close[i]
        slow_ema = slow_ema * slow_decay + slow_alpha * close[i]
        seed += fast_ema - slow_ema
    value = fast_ema - slow_ema
    trigger = seed / signal
    line[first] = value
    signal_line[first] = trigger
    histogram[first] = value - trigger
    for i in range(first + 1, n):
        fast_ema = fast_ema * fast_decay + fast_alpha * close[i]
        slow_ema = slow_ema * slow_decay + slow_alpha * close[i]
        value = fast_ema - slow_ema
        trigger = trigger * signal_decay + signal_alpha * value
        line[i] = value
        signal_line[i] = trigger
        histogram[i] = value - trigger


@njit(cache=True, nogil=True, fastmath=CONTRACT)
def _true_range(high, low, close, i):
    """Bar ``i``'s high-low widened to the previous close (the greatest of high-low,
    |high-prev|, |low-prev|)."""
    previous = close[i - 1]
    return max(high[i], previous) - min(low[i], previous)


@njit(cache=True, nogil=True, fastmath=CONTRACT)
def _first_atr(high, low, close, period):
    """Wilder's first ATR, at bar ``period``: the mean of the true ranges of bars 1..period."""
    total = 0.0
    for i in range(1, period + 1):
        total += _true_range(high, low, close, i)
    return total / period


@njit(cache=True, nogil=True, fastmath=CONTRACT)
def atr(high, low, close, period, out):
    """Wilder's ATR: the mean of the true ranges of bars 1..period, then smoothed; NaN up to
    bar ``period``."""
    n = len(close)
    for i in range(min(period, n)):
        out[i] = NAN
    if n <= period:
        return
    last = _first_atr(high, low, close, period)
    out[period] = last
    alpha = 1.0 / period
    decay = 1.0 - alpha
    for i in range(period + 1, n):
        last = last * decay + alpha * _true_range(high, low, close, i)
        out[i] = last


@njit(cache=True, nogil=True, fastmath=CONTRACT)
def bollinger(close, period, stddev, upper, middle, lower):
    """Moving mean +/- ``stddev`` population standard deviations (TA-Lib's BBANDS).

    The window's mean and sum of squared deviations slide by Welford's update (the value
    that enters and the one that leaves), which keeps the deviations exact where a running
    sum of squared prices would cancel them away; both are computed afresh every RESUM bars.
    """
    n = len(close)
    for i in range(min(period - 1, n)):
        upper[i] = NAN
        middle[i] = NAN
        lower[i] = NAN
    scale = 1.0 / period
    mean = 0.0
    squares = 0.0  # sum of squared deviations from the window's mean
    for i in range(period - 1, n):
        if i == period - 1 or (i - period) % RESUM == 0:
            mean = _mean(close, i - period + 1, i + 1)
            squares = 0.0
            for j in range(i - period + 1, i + 1):
                squares += (close[j] - mean) ** 2
        else:
            entering = close[i]
            leaving = close[i - period]
            previous = mean
            mean += (entering - leaving) * scale
            squares += (entering - leaving) * (entering - mean + leaving - previous)
        variance = squares * scale
        width = stddev * math.sqrt(variance) if variance > 0 else 0.0
        middle[i] = mean
        upper[i] = mean + width
        lower[i] = mean - width


@njit(cache=True, nogil=True, fastmath=CONTRACT)
def supertrend(high, low, close, period, multiplier, line, direction):
    """SuperTrend from bar ``period`` (the first with an ATR), NaN before.

    Basic bands are hl2 +/- multiplier x ATR. The final upper band takes the basic one when
    that is lower or when the previous close broke above it, else it stays; the final lower
    band mirrors it. The trend starts down; a down trend turns up when the close rises above
    the final upper band, an up trend turns down when it falls below the final lower band.
    The line is the lower band in an up trend, the upper band in a down trend.
    """
    n = len(close)
    for i in range(min(period, n)):
        line[i] = NAN
        direction[i] = NAN
    if n <= period:
        return
    band = _first_atr(high, low, close, period)
    alpha = 1.0 / period
    decay = 1.0 - alpha
    middle = (high[period] + low[period]) / 2
    upper = middle + multiplier * band
    lower = middle - multiplier * band
    up = False
    line[period] = upper
    direction[period] = -1.0
    for i in range(period + 1, n):
        band = band * decay + alpha * _true_range(high, low, close, i)
        middle = (high[i] + low[i]) / 2
        new_upper = middle + multiplier * band
        new_lower = middle - multiplier * band
        previous = close[i - 1]
        if new_upper < upper or previous > upper:
            upper = new_upper
        if new_lower > lower or previous < lower:
            lower = new_lower
        if math.isnan(band) or math.isnan(middle) or math.isnan(close[i]):
            # Comparisons with NaN are false: the bands and trend would go on looking valid.
            line[i] = NAN
            direction[i] = NAN
            continue
        if up:
            up = not close[i] < lower
        else:
            up = close[i] > upper
        if up:
            line[i] = lower
            direction[i] = 1.0
        else:
            line[i] = upper
            direction[i] = -1.0
