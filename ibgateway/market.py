"""The simulated market: historical bars per symbol and one live price per symbol.

History is a deterministic function of (seed, symbol, session): daily closes follow a
mean-reverting geometric random walk anchored at the first session of 2000, so a session's bar
never changes as the clock moves on, and each session's minutes are a Brownian bridge from its
open to its close. Every bar size is aggregated from those minutes (seconds bars from a finer
bridge inside each minute), so a day's hourly bars agree with its daily bar.

With a bars directory, ``<dir>/<SYMBOL>.csv`` (date,open,high,low,close,volume) replaces the
walk for that symbol. Such a file's history ends at its last row, so a request without an end
time ends there rather than at the wall clock: old files stay useful for demos.

The live price starts at the last close of the series and then moves only by ``set_price``
and by ticks (``step``); listeners (the order book, market data) hear every move.
"""

import csv
import logging
import math
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np

from .clock import wall_clock
from .contracts import stock_info
from .protocol import EASTERN
from .sessions import MINUTES, SessionCalendar, session_close, session_open

logger = logging.getLogger(__name__)

CENT = Decimal("0.01")
DAY, WEEK, MONTH = "day", "week", "month"

#: IB's bar size settings (exact spelling: IB refuses "1 sec" and "1 mins").
BAR_SIZES = {
    "1 secs": 1, "5 secs": 5, "10 secs": 10, "15 secs": 15, "30 secs": 30,
    "1 min": 60, "2 mins": 120, "3 mins": 180, "5 mins": 300, "10 mins": 600,
    "15 mins": 900, "20 mins": 1200, "30 mins": 1800, "1 hour": 3600, "2 hours": 7200,
    "3 hours": 10800, "4 hours": 14400, "8 hours": 28800,
    "1 day": DAY, "1 week": WEEK, "1 month": MONTH,
}  # fmt: skip

#: IB's longest duration for seconds bars ("Time length exceed max." beyond).
SECONDS_BAR_LIMITS = {1: 1800, 5: 3600, 10: 14400, 15: 14400, 30: 28800}
MAX_BARS = 100_000

WHAT_TO_SHOW = frozenset(["TRADES", "ADJUSTED_LAST", "MIDPOINT", "BID", "ASK", "BID_ASK"])

_DURATION = re.compile(r"^(\d+) ([SDWMY])$")


class HistoryError(Exception):
    """A historical data request IB would refuse, with IB's error code."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Bar:
    """One OHLCV bar; ``time`` is a date for daily and longer bars, else its start (aware)."""

    time: datetime | date
    open: float
    high: float
    low: float
    close: float
    volume: float
    wap: float
    count: int


def parse_duration(text: str) -> tuple[int, str]:
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) <= 0:
        raise HistoryError(
            321,
            f"Error validating request.-'bX' : cause - Historical data query duration "
            f'{text!r} is invalid (expected e.g. "3600 S", "10 D", "2 W", "6 M", "1 Y")',
        )
    return int(match.group(1)), match.group(2)


def parse_bar_size(text: str):
    size = BAR_SIZES.get(text.strip())
    if size is None:
        raise HistoryError(
            321, f"Error validating request.-'bP' : cause - Historical data bar size setting "
            f"{text!r} is invalid"
        )  # fmt: skip
    return size


def _months_back(moment: datetime, months: int) -> datetime:
    month_index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(month_index, 12)
    month += 1
    last_day = (date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)).day
    return moment.replace(year=year, month=month, day=min(moment.day, last_day))


def _round2(values):
    return np.round(values, 2)


def _aggregate(bars: list[Bar], key, label) -> list[Bar]:
    """Merge consecutive bars with the same ``key(bar)``; ``label(group)`` names the result."""
    out = []
    group: list[Bar] = []
    for bar in bars:
        if group and key(bar) != key(group[0]):
            out.append(_merge(group, label(group)))
            group = []
        group.append(bar)
    if group:
        out.append(_merge(group, label(group)))
    return out


def _merge(group: list[Bar], when) -> Bar:
    volume = sum(b.volume for b in group)
    if volume > 0:
        wap = sum(b.wap * b.volume for b in group) / volume
    else:
        wap = sum(b.wap for b in group) / len(group)
    return Bar(
        time=when,
        open=group[0].open,
        high=max(b.high for b in group),
        low=min(b.low for b in group),
        close=group[-1].close,
        volume=volume,
        wap=round(wap, 4),
        count=sum(b.count for b in group),
    )


def _longer_bars(daily: list[Bar], size: str) -> list[Bar]:
    """Weekly or monthly bars from daily ones, labelled with their last session (as IB does)."""
    if size == WEEK:
        return _aggregate(daily, lambda b: b.time.isocalendar()[:2], lambda g: g[-1].time)
    return _aggregate(daily, lambda b: (b.time.year, b.time.month), lambda g: g[-1].time)


class Window:
    """The span a request covers: bars starting in [start, end) (sessions for daily bars)."""

    def __init__(self, calendar: SessionCalendar, end: datetime, count: int, unit: str):
        self.end = end
        self.unit = unit
        if unit == "S":
            self.start = end - timedelta(seconds=count)
        elif unit == "D":
            last = calendar.last_started(end)
            first = calendar.day(max(0, calendar.index(last) - count + 1))
            self.start = session_open(first)
        elif unit == "W":
            self.start = end - timedelta(days=7 * count)
        elif unit == "M":
            self.start = _months_back(end.astimezone(EASTERN), count)
        else:
            self.start = _months_back(end.astimezone(EASTERN), 12 * count)

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def sessions(self, calendar: SessionCalendar) -> list[date]:
        """Sessions with any part in the window (daily bars use whole sessions)."""
        first = self.start.astimezone(EASTERN).date()
        last = self.end.astimezone(EASTERN).date()
        days = calendar.between(first, last)
        if self.unit in ("W", "M", "Y"):
            # "1 Y" ending today starts the day after the same date last year: ~252 sessions.
            days = [d for d in days if d > first]
        return [d for d in days if session_open(d) < self.end and session_close(d) > self.start]


class SyntheticSeries:
    """The seeded walk of one symbol (see the module docstring)."""

    BLOCK = 1024
    KAPPA = 0.004  # mean reversion per session: the level wanders +-25 % around its centre

    def __init__(self, symbol: str, seed: int, calendar: SessionCalendar):
        info = stock_info(symbol)
        self.symbol = symbol
        self.calendar = calendar
        self.key = [seed & 0xFFFFFFFF, info.con_id & 0xFFFFFFFF, len(symbol)]
        unit = np.random.default_rng([*self.key, 0]).random()
        self.sigma = (0.008 if info.stock_type == "ETF" else 0.012) + 0.012 * unit
        self.mu = math.log(info.base_price)
        self.volume = info.daily_volume
        self._log_closes: list[float] = []
        self._summaries: dict[int, Bar] = {}
        self._minutes: OrderedDict[int, dict] = OrderedDict()

    # --- closes ---------------------------------------------------------------------------
    def _extend(self, index: int) -> None:
        x = self._log_closes[-1] if self._log_closes else self.mu
        while len(self._log_closes) <= index:
            block = len(self._log_closes) // self.BLOCK
            z = np.random.default_rng([*self.key, 1, block]).standard_normal(self.BLOCK)
            for value in z:
                x = x + self.KAPPA * (self.mu - x) + self.sigma * float(value)
                self._log_closes.append(x)

    def close(self, index: int) -> float:
        if index < 0:
            return math.exp(self.mu)
        self._extend(index)
        return round(math.exp(self._log_closes[index]), 2)

    # --- one session ----------------------------------------------------------------------
    def minutes(self, index: int) -> dict:
        """The session's 390 one-minute bars as arrays (cached, a few sessions at a time)."""
        cached = self._minutes.get(index)
        if cached is not None:
            self._minutes.move_to_end(index)
            return cached
        rng = np.random.default_rng([*self.key, 2, index])
        prev, close = self.close(index - 1), self.close(index)
        first = prev * math.exp(rng.normal(0.0, 0.25 * self.sigma))
        step = self.sigma * 0.9 / math.sqrt(MINUTES)
        walk = np.cumsum(rng.standard_normal(MINUTES) * step)
        t = np.arange(1, MINUTES + 1) / MINUTES
        path = math.log(first) + (math.log(close) - math.log(first)) * t + (walk - t * walk[-1])
        points = _round2(np.exp(np.concatenate([[math.log(first)], path])))
        points[-1] = close
        opens, closes = points[:-1], points[1:]
        top, bottom = np.maximum(opens, closes), np.minimum(opens, closes)
        wick_up = np.exp(np.abs(rng.standard_normal(MINUTES)) * step)
        wick_down = np.exp(np.abs(rng.standard_normal(MINUTES)) * step)
        highs = np.maximum(top, _round2(top * wick_up))
        lows = np.minimum(bottom, _round2(bottom / wick_down))
        lows = np.maximum(lows, 0.01)
        profile = 1.0 + 2.0 * ((np.arange(MINUTES) - 194.5) / 194.5) ** 2  # busy open and close
        weights = profile * np.exp(rng.normal(0.0, 0.35, MINUTES))
        day_volume = self.volume * math.exp(rng.normal(0.0, 0.25))
        volumes = np.floor(day_volume * weights / weights.sum())
        waps = np.round((highs + lows + closes) / 3.0, 4)
        counts = np.maximum(1, volumes // 120).astype(np.int64)
        data = {
            "o": opens,
            "h": highs,
            "l": lows,
            "c": closes,
            "v": volumes,
            "w": waps,
            "n": counts,
        }
        self._minutes[index] = data
        if len(self._minutes) > 64:
            self._minutes.popitem(last=False)
        return data

    def _summary(self, data: dict, day: date, upto: int = MINUTES) -> Bar:
        volume = float(data["v"][:upto].sum())
        if volume > 0:
            wap = float((data["w"][:upto] * data["v"][:upto]).sum() / volume)
        else:
            wap = float(data["w"][:upto].mean())
        return Bar(
            time=day,
            open=float(data["o"][0]),
            high=float(data["h"][:upto].max()),
            low=float(data["l"][:upto].min()),
            close=float(data["c"][upto - 1]),
            volume=volume,
            wap=round(wap, 4),
            count=int(data["n"][:upto].sum()),
        )

    def daily_bar(self, day: date, end: datetime) -> Bar | None:
        """The session's bar, cut at ``end`` while the session is still running."""
        index = self.calendar.index(day)
        elapsed = math.ceil((end - session_open(day)).total_seconds() / 60)
        if elapsed <= 0:
            return None
        if elapsed >= MINUTES:
            bar = self._summaries.get(index)
            if bar is None:
                bar = self._summaries[index] = self._summary(self.minutes(index), day)
            return bar
        return self._summary(self.minutes(index), day, elapsed)

    def intraday_bars(self, day: date, start: datetime, end: datetime, size: int) -> list[Bar]:
        """Bars of ``size`` seconds whose start lies in [start, end), aligned as IB aligns them
        (on the clock from midnight, the first one of a session labelled 09:30)."""
        opened = session_open(day)
        first = max(0, math.ceil((start - opened).total_seconds() / 60))
        stop = min(MINUTES, math.ceil((end - opened).total_seconds() / 60))
        if size < 60:
            first = max(0, math.floor((start - opened).total_seconds() / 60))
        if first >= stop:
            return []
        data = self.minutes(self.calendar.index(day))
        if size < 60:
            return self._seconds_bars(day, data, first, stop, start, end, size)
        ks = np.arange(first, stop)
        ids = ((9 * 60 + 30 + ks) * 60) // size
        starts = np.concatenate([[0], np.flatnonzero(np.diff(ids)) + 1])
        ends = np.concatenate([starts[1:], [len(ks)]]) - 1
        sel = {name: values[first:stop] for name, values in data.items()}
        highs = np.maximum.reduceat(sel["h"], starts)
        lows = np.minimum.reduceat(sel["l"], starts)
        volumes = np.add.reduceat(sel["v"], starts)
        weighted = np.add.reduceat(sel["w"] * sel["v"], starts)
        counts = np.add.reduceat(sel["n"], starts)
        midnight = datetime.combine(day, time(0), tzinfo=EASTERN)
        bars = []
        for j, s in enumerate(starts):
            label = max(opened, midnight + timedelta(seconds=int(ids[s]) * size))
            volume = float(volumes[j])
            wap = float(weighted[j] / volume) if volume else float(sel["w"][s])
            bars.append(
                Bar(
                    time=label,
                    open=float(sel["o"][s]),
                    high=float(highs[j]),
                    low=float(lows[j]),
                    close=float(sel["c"][ends[j]]),
                    volume=volume,
                    wap=round(wap, 4),
                    count=int(counts[j]),
                )
            )
        return bars

    def _seconds_bars(self, day, data, first, stop, start, end, size) -> list[Bar]:
        opened = session_open(day)
        bars = []
        for k in range(first, stop):
            rng = np.random.default_rng([*self.key, 3, self.calendar.index(day), k])
            lo, hi = float(data["l"][k]), float(data["h"][k])
            a, b = float(data["o"][k]), float(data["c"][k])
            walk = np.cumsum(rng.standard_normal(60) * max(hi - lo, 0.01) / 8)
            t = np.arange(1, 61) / 60
            path = np.clip(_round2(a + (b - a) * t + (walk - t * walk[-1])), lo, hi)
            points = np.concatenate([[a], path])
            points[-1] = b
            weights = np.exp(rng.normal(0.0, 0.5, 60))
            volumes = np.floor(float(data["v"][k]) * weights / weights.sum())
            minute_start = opened + timedelta(minutes=k)
            for s0 in range(0, 60, size):
                label = minute_start + timedelta(seconds=s0)
                if label < start or label >= end:
                    continue
                segment = points[s0 : s0 + size + 1]
                volume = float(volumes[s0 : s0 + size].sum())
                bars.append(
                    Bar(
                        time=label,
                        open=float(segment[0]),
                        high=float(segment.max()),
                        low=float(segment.min()),
                        close=float(segment[-1]),
                        volume=volume,
                        wap=round(float(segment.mean()), 4),
                        count=max(1, int(volume // 120)),
                    )
                )
        return bars

    # --- requests -------------------------------------------------------------------------
    def history_end(self, now: datetime) -> datetime:
        return now

    def bars(self, window: Window, size) -> list[Bar]:
        days = window.sessions(self.calendar)
        if size in (DAY, WEEK, MONTH):
            daily = [b for d in days if (b := self.daily_bar(d, window.end)) is not None]
            return daily if size == DAY else _longer_bars(daily, size)
        bars: list[Bar] = []
        for day in days:
            bars.extend(self.intraday_bars(day, window.start, window.end, size))
        return bars

    def last_close(self, now: datetime) -> float:
        day = self.calendar.last_started(now)
        bar = self.daily_bar(day, now)
        return bar.close if bar else self.close(self.calendar.index(day) - 1)


class CsvSeries:
    """Bars read from ``<dir>/<SYMBOL>.csv``; longer bar sizes are aggregated from them."""

    def __init__(self, symbol: str, path: Path):
        self.symbol = symbol
        self.path = path
        self.bars_in: list[Bar] = []
        self.daily = True
        self._load()
        if not self.bars_in:
            raise HistoryError(162, f"Historical Market Data Service error message:{path} is empty")
        if self.daily:
            self.resolution = 86400
        else:
            gaps = [
                (b.time - a.time).total_seconds()
                for a, b in zip(self.bars_in, self.bars_in[1:], strict=False)
            ]
            self.resolution = min((g for g in gaps if g > 0), default=60)

    @staticmethod
    def _parse_time(text: str):
        text = text.strip()
        if text.isdigit() and len(text) == 8:
            return datetime.strptime(text, "%Y%m%d").date()
        if text.isdigit():
            return datetime.fromtimestamp(int(text), UTC)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            moment = datetime.strptime(text[:17], "%Y%m%d %H:%M:%S")
        if len(text) <= 10:
            return moment.date()
        return moment if moment.tzinfo else moment.replace(tzinfo=EASTERN)

    def _load(self) -> None:
        with self.path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames:
                return
            names = {name.strip().lower(): name for name in reader.fieldnames}
            column = {k: names.get(k) for k in ("date", "open", "high", "low", "close", "volume")}
            column["date"] = column["date"] or names.get("time") or names.get("datetime")
            missing = [k for k in ("date", "open", "high", "low", "close") if not column[k]]
            if missing:
                raise HistoryError(
                    162, f"Historical Market Data Service error message:{self.path} lacks "
                    f"column(s) {', '.join(missing)}"
                )  # fmt: skip
            for row in reader:
                if not row.get(column["date"]):
                    continue
                when = self._parse_time(row[column["date"]])
                o, h, lo, c = (float(row[column[k]]) for k in ("open", "high", "low", "close"))
                volume = float(row[column["volume"]] or 0) if column["volume"] else 0.0
                high, low = max(h, o, c), min(lo, o, c)
                self.bars_in.append(
                    Bar(when, o, high, low, c, volume, round((high + low + c) / 3, 4), 0)
                )
        self.daily = all(not isinstance(b.time, datetime) for b in self.bars_in)
        if not self.daily:
            self.bars_in = [
                b if isinstance(b.time, datetime) else Bar(
                    datetime.combine(b.time, time(0), tzinfo=EASTERN), *_fields(b)
                )
                for b in self.bars_in
            ]  # fmt: skip
        self.bars_in.sort(key=lambda b: b.time)

    def _moment(self, bar: Bar) -> datetime:
        if isinstance(bar.time, datetime):
            return bar.time
        return session_open(bar.time)

    def history_end(self, now: datetime) -> datetime:
        last = self.bars_in[-1]
        if isinstance(last.time, datetime):
            return last.time + timedelta(seconds=self.resolution)
        return session_close(last.time)

    def bars(self, window: Window, size) -> list[Bar]:
        want = {DAY: 86400, WEEK: 86400, MONTH: 86400}.get(size, size)
        if want < self.resolution:
            raise HistoryError(
                162, f"Historical Market Data Service error message:HMDS query returned no "
                f"data: {self.symbol}@SMART Trades (the CSV holds {self.resolution:g}-second bars)"
            )  # fmt: skip
        first_day = window.start.astimezone(EASTERN).date()
        selected = []
        for bar in self.bars_in:
            moment = self._moment(bar)
            if moment >= window.end:
                break
            if self.daily or size in (DAY, WEEK, MONTH):
                day = bar.time if self.daily else bar.time.astimezone(EASTERN).date()
                inside = (
                    day > first_day
                    if window.unit in ("W", "M", "Y")
                    else moment >= (session_open(window.start.astimezone(EASTERN).date()))
                )
            else:
                inside = moment >= window.start
            if inside:
                selected.append(bar)
        if size in (DAY, WEEK, MONTH):
            if not self.daily:
                selected = _aggregate(
                    selected,
                    lambda b: b.time.astimezone(EASTERN).date(),
                    lambda g: g[0].time.astimezone(EASTERN).date(),
                )
            return selected if size == DAY else _longer_bars(selected, size)
        if want == self.resolution:
            return selected
        midnight_seconds = lambda b: (  # noqa: E731
            b.time.astimezone(EASTERN) - datetime.combine(
                b.time.astimezone(EASTERN).date(), time(0), tzinfo=EASTERN
            )
        ).total_seconds()  # fmt: skip
        return _aggregate(
            selected,
            lambda b: (b.time.astimezone(EASTERN).date(), int(midnight_seconds(b) // want)),
            lambda g: g[0].time,
        )

    def last_close(self, now: datetime) -> float:
        return self.bars_in[-1].close


def _fields(bar: Bar):
    return bar.open, bar.high, bar.low, bar.close, bar.volume, bar.wap, bar.count


def to_price(value) -> Decimal:
    """A live price from a float, str or Decimal: exact (floats via str), on the cent grid."""
    number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    if not number.is_finite() or number <= 0:
        raise ValueError(f"a price must be a positive number, not {value!r}")
    return number.quantize(CENT, rounding=ROUND_HALF_UP)


class Market:
    """Series, live prices and their listeners; safe to use from any thread.

    Price moves run through ``dispatch`` (the gateway points it at its event loop), so the
    listeners — order matching, market data — run on the loop that owns the sockets, and
    ``set_price`` returns only after they have run ("immediately" for a test).
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        bars_dir=None,
        clock=None,
        tick_volatility: float = 0.0005,
    ):
        self.seed = int(seed)
        self.bars_dir = Path(bars_dir) if bars_dir else None
        self.clock = clock or wall_clock
        self.tick_volatility = tick_volatility
        self.calendar = SessionCalendar()
        self._lock = threading.RLock()
        self._series: dict[str, SyntheticSeries | CsvSeries] = {}
        self._live: dict[str, Decimal] = {}
        self._moved: set[str] = set()
        self._tick_rngs: dict[str, np.random.Generator] = {}
        self._listeners = []
        self.dispatch = lambda fn, *args: fn(*args)

    # --- clock and series -----------------------------------------------------------------
    def now(self) -> datetime:
        return self.clock()

    def csv_symbols(self) -> list[str]:
        if not self.bars_dir or not self.bars_dir.is_dir():
            return []
        return sorted(p.stem.upper() for p in self.bars_dir.glob("*.csv"))

    def series(self, symbol: str):
        symbol = symbol.upper()
        with self._lock:
            found = self._series.get(symbol)
            if found is None:
                path = self.csv_path(symbol)
                if path is not None:
                    found = CsvSeries(symbol, path)
                else:
                    found = SyntheticSeries(symbol, self.seed, self.calendar)
                self._series[symbol] = found
            return found

    def csv_path(self, symbol: str) -> Path | None:
        if not self.bars_dir:
            return None
        for name in (f"{symbol}.csv", f"{symbol.lower()}.csv"):
            path = self.bars_dir / name
            if path.is_file():
                return path
        return None

    # --- live prices ----------------------------------------------------------------------
    def price(self, symbol: str) -> Decimal:
        """The current simulated price (the series' last close until something moves it)."""
        symbol = symbol.upper()
        with self._lock:
            price = self._live.get(symbol)
            if price is None:
                price = to_price(self.series(symbol).last_close(self.now()))
                self._live[symbol] = price
            return price

    def known_price(self, symbol: str) -> Decimal | None:
        with self._lock:
            return self._live.get(symbol.upper())

    def moved(self, symbol: str) -> bool:
        with self._lock:
            return symbol.upper() in self._moved

    def active_symbols(self) -> list[str]:
        with self._lock:
            return sorted(self._live)

    def subscribe(self, listener) -> None:
        """``listener(symbol, price)`` runs after every move, on the dispatching thread."""
        self._listeners.append(listener)

    def set_price(self, symbol: str, price) -> Decimal:
        """Move the price and let the listeners react (fills, ticks) before returning."""
        return self.dispatch(self._move, symbol.upper(), to_price(price))

    def step(self, symbol: str) -> Decimal:
        """One deterministic random tick of ``symbol`` (the background ticker's move)."""
        symbol = symbol.upper()
        current = self.price(symbol)
        with self._lock:
            rng = self._tick_rngs.get(symbol)
            if rng is None:
                series = self.series(symbol)
                if isinstance(series, SyntheticSeries):
                    base = series.key
                else:
                    base = [self.seed & 0xFFFFFFFF, stock_info(symbol).con_id & 0xFFFFFFFF]
                rng = self._tick_rngs[symbol] = np.random.default_rng([*base, 4])
            change = float(current) * self.tick_volatility * float(rng.standard_normal())
        return self.set_price(symbol, max(0.01, float(current) + change))

    def tick(self) -> None:
        for symbol in self.active_symbols():
            self.step(symbol)

    def _move(self, symbol: str, price: Decimal) -> Decimal:
        with self._lock:
            self._live[symbol] = price
            self._moved.add(symbol)
        for listener in list(self._listeners):
            try:
                listener(symbol, price)
            except Exception:
                logger.exception("price listener failed for %s at %s", symbol, price)
        return price

    # --- history --------------------------------------------------------------------------
    def bars(
        self,
        symbol: str,
        *,
        end: datetime | None,
        duration: str,
        bar_size: str,
        what_to_show: str = "TRADES",
    ) -> tuple[list[Bar], datetime, datetime]:
        """Bars for a reqHistoricalData; returns (bars, window start, window end).

        Raises :class:`HistoryError` for what IB refuses (bad duration or bar size, too many
        bars, an unsupported whatToShow).
        """
        count, unit = parse_duration(duration)
        size = parse_bar_size(bar_size)
        what = what_to_show.strip().upper()
        if what not in WHAT_TO_SHOW:
            raise HistoryError(
                321, f"Error validating request.-'bT' : cause - whatToShow {what_to_show!r} "
                "is not available for this contract"
            )  # fmt: skip
        now = self.now()
        with self._lock:
            series = self.series(symbol)
            latest = series.history_end(now)
            stop = min(end, latest) if end is not None else latest
            window = Window(self.calendar, stop, count, unit)
            if isinstance(size, int):
                limit = SECONDS_BAR_LIMITS.get(size)
                if limit is not None and window.seconds > limit:
                    raise HistoryError(
                        162, "Historical Market Data Service error message:Time length exceed max."
                    )
                estimate = window.seconds * (6.5 / 24) / size
                if estimate > MAX_BARS:
                    raise HistoryError(
                        162, "Historical Market Data Service error message:Time length exceed max."
                    )
            bars = series.bars(window, size)
            if bars and end is None and symbol.upper() in self._moved:
                bars[-1] = self._with_live(bars[-1], float(self._live[symbol.upper()]))
        return self._shown(bars, what), window.start, window.end

    @staticmethod
    def _with_live(bar: Bar, live: float) -> Bar:
        """The latest bar ends at the live price once a test or the ticker has moved it."""
        return Bar(
            bar.time,
            bar.open,
            max(bar.high, live),
            min(bar.low, live),
            live,
            bar.volume,
            bar.wap,
            bar.count,
        )

    @staticmethod
    def _shown(bars: list[Bar], what: str) -> list[Bar]:
        if what in ("TRADES", "ADJUSTED_LAST"):
            return bars
        spread = 0.01
        shift = {"MIDPOINT": 0.0, "BID": -spread, "ASK": spread}.get(what, 0.0)
        shown = []
        for b in bars:
            if what == "BID_ASK":  # IB: open/close = average bid/ask, high = max ask, low = min bid
                values = (b.open - spread, b.high + spread, b.low - spread, b.close + spread)
            else:
                values = (b.open + shift, b.high + shift, b.low + shift, b.close + shift)
            o, h, lo, c = (round(max(v, 0.01), 2) for v in values)
            shown.append(Bar(b.time, o, max(o, h, c), min(o, lo, c), c, -1, -1, -1))
        return shown

    def session_stats(self, symbol: str) -> dict:
        """Today's open/high/low/volume and the previous close, for market data ticks."""
        now = self.now()
        with self._lock:
            series = self.series(symbol)
            price = float(self.price(symbol))
            if isinstance(series, SyntheticSeries):
                day = self.calendar.last_started(now)
                bar = series.daily_bar(day, now)
                prev = series.close(self.calendar.index(day) - 1)
            else:
                bar = series.bars_in[-1]
                prev = series.bars_in[-2].close if len(series.bars_in) > 1 else bar.open
            high = max(bar.high, price) if bar else price
            low = min(bar.low, price) if bar else price
            return {
                "open": bar.open if bar else price,
                "high": high,
                "low": low,
                "close": prev,
                "volume": bar.volume if bar else 0.0,
            }
