"""IB's own words for history requests, checked before anything is sent."""

import re

DURATION = re.compile(r"^[1-9]\d* [SDWMY]$")
BAR_SIZES = frozenset(
    [
        "1 secs", "5 secs", "10 secs", "15 secs", "30 secs", "1 min", "2 mins", "3 mins",
        "5 mins", "10 mins", "15 mins", "20 mins", "30 mins", "1 hour", "2 hours", "3 hours",
        "4 hours", "8 hours", "1 day", "1 week", "1 month",
    ]
)  # fmt: skip


def period_error(period):
    """The reason ``period`` is not an IB duration, or None (any JSON value may come here)."""
    if not isinstance(period, str):
        return 'must be a string, an IB duration such as "1 Y", "6 M", "2 W" or "10 D".'
    if not DURATION.match(period):
        return f'{period!r} is not an IB duration such as "1 Y", "6 M", "2 W" or "10 D".'
    return None


def bar_error(bar):
    """The reason ``bar`` is not an IB bar size, or None (any JSON value may come here)."""
    if not isinstance(bar, str):
        return 'must be a string, an IB bar size such as "1 day", "1 week" or "1 hour".'
    if bar not in BAR_SIZES:
        return f'{bar!r} is not an IB bar size such as "1 day", "1 week" or "1 hour".'
    return None
