"""US equity trading sessions: weekdays less NYSE holidays, 09:30-16:00 US/Eastern.

Holidays matter for realism: a "1 Y" request of daily bars from IB returns ~252 bars, not the
~261 weekdays of a year, and contract details list holidays as CLOSED. Early closes (13:00 on
the day after Thanksgiving etc.) are not modelled: those sessions run to 16:00 here.
"""

import bisect
from datetime import date, datetime, time, timedelta
from functools import lru_cache

from .protocol import EASTERN

OPEN = time(9, 30)
CLOSE = time(16, 0)
MINUTES = 390  # 09:30-16:00
EPOCH = date(2000, 1, 3)  # the first session of the simulated price history

#: Closures that no rule yields (national mourning, 9/11, hurricane Sandy).
SPECIAL_CLOSURES = frozenset(
    [
        date(2001, 9, 11), date(2001, 9, 12), date(2001, 9, 13), date(2001, 9, 14),
        date(2004, 6, 11), date(2007, 1, 2), date(2012, 10, 29), date(2012, 10, 30),
        date(2018, 12, 5), date(2025, 1, 9),
    ]
)  # fmt: skip


def _easter(year: int) -> date:
    """Gregorian Easter Sunday (the anonymous Gregorian algorithm)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return date(year, month, day + 1)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    offset = (weekday - first.weekday()) % 7
    return first + timedelta(days=offset + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    last = date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: date) -> date:
    """A fixed-date holiday on Saturday is taken on Friday, on Sunday on Monday."""
    if day.weekday() == 5:
        return day - timedelta(days=1)
    if day.weekday() == 6:
        return day + timedelta(days=1)
    return day


@lru_cache(maxsize=128)
def holidays(year: int) -> frozenset[date]:
    """NYSE full-day holidays of ``year``."""
    days = {
        _nth_weekday(year, 1, 0, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, 0, 3),  # Washington's Birthday
        _easter(year) - timedelta(days=2),  # Good Friday
        _last_weekday(year, 5, 0),  # Memorial Day
        _observed(date(year, 7, 4)),
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving
        _observed(date(year, 12, 25)),
    }
    # Trap: New Year's Day on a Saturday is NOT observed on the Friday before (NYSE rule 7.2).
    new_year = date(year, 1, 1)
    if new_year.weekday() == 6:
        days.add(new_year + timedelta(days=1))
    elif new_year.weekday() < 5:
        days.add(new_year)
    if year >= 2022:
        days.add(_observed(date(year, 6, 19)))  # Juneteenth
    days.update(d for d in SPECIAL_CLOSURES if d.year == year)
    return frozenset(days)


def is_session(day: date) -> bool:
    return day.weekday() < 5 and day not in holidays(day.year)


def session_open(day: date) -> datetime:
    return datetime.combine(day, OPEN, tzinfo=EASTERN)


def session_close(day: date) -> datetime:
    return datetime.combine(day, CLOSE, tzinfo=EASTERN)


class SessionCalendar:
    """Session dates from :data:`EPOCH` on, with a stable index per date.

    The index anchors the simulated price history: session ``i`` always gets the same bar,
    however far the clock has moved, so bars stay deterministic across gateway runs.
    """

    def __init__(self):
        self._days: list[date] = []
        self._extend(date(EPOCH.year + 30, 1, 1))

    def _extend(self, until: date) -> None:
        day = self._days[-1] + timedelta(days=1) if self._days else EPOCH
        while day <= until:
            if is_session(day):
                self._days.append(day)
            day += timedelta(days=1)

    def _cover(self, day: date) -> None:
        if day > self._days[-1]:
            self._extend(date(day.year + 5, 12, 31))

    def index(self, day: date) -> int:
        """The index of the last session on or before ``day`` (-1 before the epoch)."""
        self._cover(day)
        return bisect.bisect_right(self._days, day) - 1

    def day(self, index: int) -> date:
        while index >= len(self._days):
            self._extend(date(self._days[-1].year + 5, 12, 31))
        return self._days[index]

    def between(self, first: date, last: date) -> list[date]:
        """Sessions ``first <= d <= last``."""
        self._cover(last)
        lo = bisect.bisect_left(self._days, first)
        hi = bisect.bisect_right(self._days, last)
        return self._days[lo:hi]

    def last_started(self, moment: datetime) -> date:
        """The latest session that has opened by ``moment`` (today once 09:30 has passed)."""
        local = moment.astimezone(EASTERN)
        i = self.index(local.date())
        day = self._days[i]
        if day == local.date() and local < session_open(day):
            day = self._days[i - 1]
        return day

    def next_session(self, day: date) -> date:
        self._cover(day + timedelta(days=10))
        return self._days[bisect.bisect_right(self._days, day)]


def hours_text(calendar: SessionCalendar, today: date, days: int, *, liquid: bool) -> str:
    """Contract details' tradingHours/liquidHours: "20231124:0400-20231124:2000;...;CLOSED"."""
    parts = []
    start, end = ("0930", "1600") if liquid else ("0400", "2000")
    for offset in range(days):
        day = today + timedelta(days=offset)
        stamp = day.strftime("%Y%m%d")
        if is_session(day):
            parts.append(f"{stamp}:{start}-{stamp}:{end}")
        else:
            parts.append(f"{stamp}:CLOSED")
    return ";".join(parts)
