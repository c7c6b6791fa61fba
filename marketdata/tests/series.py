"""Price series for the indicator tests and bench/indicators.py (NumPy only, no Django)."""

import numpy as np


def random_walk(bars, seed=42, volatility=0.012):
    """OHLC bars around 100: a geometric random walk (``volatility`` per bar), highs and lows
    beyond open and close. Returns (high, low, close)."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, volatility, bars)))
    open_ = np.concatenate([[100.0], close[:-1]])
    spread = close * np.abs(rng.normal(0.0, 0.006, bars))
    high = np.maximum(open_, close) + spread
    low = np.minimum(open_, close) - spread * rng.random(bars)
    return high, low, close
