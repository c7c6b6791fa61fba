"""The simulated market the test suite runs on.

Every loopback gateway a test starts stands on one pinned market date (``MARKET_DATE``,
default 2025-03-14, after the close), so that what the agents see, and so what a test may
assert, is the same on every day the suite runs. ``MARKET_DATE=2024-12-25 make test`` moves the
whole suite to another day; a test whose outcome needs a buy, a sell or an order makes it
happen on purpose with a bars file (``write_bars``), whose history ends at its last row
whatever the date.
"""

import csv
import os
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from ibgateway.clock import parse_market_date
from ibgateway.sessions import SessionCalendar

DEFAULT_MARKET_DATE = "2025-03-14"


def market_date() -> date:
    """The suite's pinned market date: ``MARKET_DATE`` (YYYY-MM-DD) or the default."""
    text = os.environ.get("MARKET_DATE") or DEFAULT_MARKET_DATE
    try:
        return parse_market_date(text)
    except ValueError as exc:
        raise ValueError(f"MARKET_DATE: {exc}") from None


# Seeds of the walks below, chosen (and checked by the tests that use them) so that the offline
# team's rules see every timeframe of the two_indicator workflow (1 Y of daily bars, 2 Y of
# weekly ones) bullish for "up" and bearish for "down" at the last bar.
TREND_WALKS = {"up": (0.0015, 28), "down": (-0.0015, 18)}
BARS_END = date(2025, 3, 14)


def write_bars(directory, symbol, *, trend="up", sessions=600, start=100.0, end=BARS_END):
    """Write ``<directory>/<SYMBOL>.csv``: ``sessions`` daily bars of a seeded walk ending on
    the session ``end`` (or the last one before it), for a gateway's ``bars_dir``."""
    drift, seed = TREND_WALKS[trend]
    rng = np.random.default_rng(seed)
    moves = drift + rng.normal(0, 0.012, sessions)
    close = start * np.exp(np.cumsum(moves))
    open_ = np.concatenate([[start], close[:-1]])
    wiggle = np.abs(rng.normal(0, 0.004, (2, sessions)))
    high = np.maximum(open_, close) * (1 + wiggle[0])
    low = np.minimum(open_, close) * (1 - wiggle[1])
    days = SessionCalendar().between(end - timedelta(days=2 * sessions), end)[-sessions:]
    path = Path(directory) / f"{symbol.upper()}.csv"
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["date", "open", "high", "low", "close", "volume"])
        for i, day in enumerate(days):
            writer.writerow(
                [day.isoformat(), *(f"{v[i]:.2f}" for v in (open_, high, low, close)), 1_000_000]
            )
    return path
