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


_UNIT_SECONDS = {"S": 1, "D": 86_400, "W": 7 * 86_400, "M": 30 * 86_400, "Y": 365 * 86_400}
_BAR_SECONDS = {"secs": 1, "min": 60, "mins": 60, "hour": 3600, "hours": 3600, "day": 86_400,
                "week": 7 * 86_400, "month": 30 * 86_400}  # fmt: skip
# IB's step sizes (TWS API, "Historical Data Limitations"): a duration up to the first column
# takes bars from the second to the third; longer ones, daily bars and up. IB refuses other
# pairs ("Historical Market Data Service error message: ... invalid step").
_STEPS = (
    ("60 S", "1 secs", "1 min"),
    ("120 S", "1 secs", "2 mins"),
    ("1800 S", "1 secs", "30 mins"),
    ("3600 S", "5 secs", "1 hour"),
    ("14400 S", "10 secs", "3 hours"),
    ("28800 S", "30 secs", "8 hours"),
    ("1 D", "1 min", "1 day"),
    ("2 D", "2 mins", "1 day"),
    ("1 W", "3 mins", "1 week"),
    ("1 M", "30 mins", "1 month"),
    ("1 Y", "1 day", "1 month"),
)
#: The longest history this site asks for: IB's daily bars of US stocks reach back a few
#: decades at most, and a request for "100 Y" is one no strategy means.
MAX_DURATION = "30 Y"


def duration_seconds(period):
    number, unit = period.split()
    return int(number) * _UNIT_SECONDS[unit]


def bar_seconds(bar):
    number, unit = bar.split()
    return int(number) * _BAR_SECONDS[unit]


def history_error(period, bar):
    """The reason IB would refuse ``period`` of ``bar`` bars, or None. Both must be valid
    words already (``period_error`` and ``bar_error`` say why not)."""
    if period_error(period) or bar_error(bar):
        return None
    seconds, size = duration_seconds(period), bar_seconds(bar)
    if seconds > duration_seconds(MAX_DURATION):
        return f"{period!r} is longer than IB's history ({MAX_DURATION} at most)."
    smallest, largest = next(
        ((low, high) for longest, low, high in _STEPS if seconds <= duration_seconds(longest)),
        ("1 day", "1 month"),
    )
    if size < bar_seconds(smallest):
        return f"IB gives {period!r} of history in bars of {smallest!r} or longer, not {bar!r}."
    if size > bar_seconds(largest):
        return f"IB gives {period!r} of history in bars of {largest!r} or shorter, not {bar!r}."
    return None
