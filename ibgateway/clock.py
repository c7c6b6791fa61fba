"""The gateway's clocks: the wall clock, a fixed moment, or a market date pinned.

A pinned date is what tests and reproducible demos want: the simulated market stands at 17:00
New York on that day (after the close, so every session up to it is complete and history does
not move under a running test) and the clock runs on from there at real speed, so that orders
and executions keep the order in which they happened, as at IB.
"""

import time as _time
from datetime import UTC, date, datetime, time, timedelta

from .protocol import EASTERN

AFTER_THE_CLOSE = time(17, 0)


def wall_clock() -> datetime:
    return datetime.now(UTC)


class PinnedClock:
    """``clock()`` is ``day`` at ``at`` (New York time) plus the real time elapsed since the
    clock was made."""

    def __init__(self, day: date, at: time = AFTER_THE_CLOSE, *, monotonic=_time.monotonic):
        self.start = datetime.combine(day, at, tzinfo=EASTERN).astimezone(UTC)
        self._monotonic = monotonic
        self._origin = monotonic()

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=self._monotonic() - self._origin)

    def __repr__(self) -> str:
        return f"PinnedClock({self.start.isoformat()})"


def make_clock(now=None):
    """The clock a gateway runs on, from ``now``: None (the wall clock), an aware datetime (a
    clock that stands still), a date (a pinned market date, see ``PinnedClock``) or a callable
    returning aware datetimes."""
    if now is None:
        return wall_clock
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        return lambda: now
    if isinstance(now, date):
        return PinnedClock(now)
    if callable(now):
        return now
    raise TypeError(f"now must be a datetime, a date or a callable, not {type(now).__name__}")


def parse_market_date(text: str) -> date:
    """A market date written YYYY-MM-DD, or a ValueError saying what is expected."""
    try:
        return date.fromisoformat(text.strip())
    except (AttributeError, ValueError):
        raise ValueError(f"{text!r} is not a date written YYYY-MM-DD (e.g. 2025-03-14)") from None
