"""The bar store (seed 004's ``ohlcv_bars``): writes, and the gap-only sync from IB.

Bars are written with ``INSERT ... ON CONFLICT DO NOTHING`` (Django's ``ignore_conflicts``),
so a bar already stored is never written twice and a sync or import can be repeated or
resumed. A sync asks IB only for what the store lacks: the bars after the latest stored one
and each hole between stored bars, in chunks IB accepts in one request, each chunk committed
on its own (so a sync stopped halfway keeps what it got, and the next one starts after it).
Every sync writes one ``data_sync_log`` row. IB's pacing is the broker's (it waits).

A bar is stored only once it is complete: IB's latest bar of a session still in progress
changes until the session ends, and ON CONFLICT DO NOTHING would keep its first version.
"""

import calendar
import math
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Count, Max, Min
from django.db.models.functions import TruncDate
from django.utils import timezone

from tradingsite.broker import BrokerError, BrokerUnavailable, get_broker
from tradingsite.broker.types import Bar
from tradingsite.broker.vocabulary import duration_seconds
from tradingsite.exceptions import ApplicationError

from .models import BarSource, Code, DataSyncLog, OhlcvBar, SyncStatus, Timeframe, contract_of

DAY = timedelta(days=1)


@dataclass(frozen=True)
class TimeframeSpec:
    bar: str  # IB's bar size
    length: timedelta  # a bar's span (its timestamp is its start)
    chunk: timedelta  # the most one history request asks for
    depth: timedelta  # what the first sync of a code fetches
    hole: timedelta  # a gap between two stored bars longer than this is a hole


# IB's limits per request (its "historical data limitations" table) bound the chunks.
TIMEFRAMES = {
    Timeframe.MIN_1: TimeframeSpec("1 min", timedelta(minutes=1), DAY, 7 * DAY, 4 * DAY),
    Timeframe.MIN_5: TimeframeSpec("5 mins", timedelta(minutes=5), 7 * DAY, 30 * DAY, 4 * DAY),
    Timeframe.MIN_15: TimeframeSpec("15 mins", timedelta(minutes=15), 14 * DAY, 60 * DAY, 4 * DAY),
    Timeframe.MIN_30: TimeframeSpec("30 mins", timedelta(minutes=30), 28 * DAY, 90 * DAY, 4 * DAY),
    Timeframe.HOUR_1: TimeframeSpec("1 hour", timedelta(hours=1), 28 * DAY, 180 * DAY, 4 * DAY),
    Timeframe.DAY_1: TimeframeSpec("1 day", DAY, 365 * DAY, 5 * 365 * DAY, 4 * DAY),
    Timeframe.WEEK_1: TimeframeSpec("1 week", 7 * DAY, 5 * 365 * DAY, 10 * 365 * DAY, 14 * DAY),
}
TIMEFRAME_OF_BAR = {spec.bar: timeframe for timeframe, spec in TIMEFRAMES.items()}
# A daily bar's timestamp is its session's date at 00:00 UTC (as IB dates it); the session
# closes at 16:00 New York (an early close is earlier still).
NEW_YORK = ZoneInfo("America/New_York")
STALE = 7 * DAY  # a newest bar older than this ends a period served from the store
CLOSE = time(16)


def timeframe_of(bar):
    """The store's timeframe for IB's bar size ``bar``, or None when the store keeps none."""
    return TIMEFRAME_OF_BAR.get(bar)


def bar_complete(timeframe, timestamp, now):
    """Whether the bar starting at ``timestamp`` has ended by ``now``."""
    if timeframe == Timeframe.DAY_1:
        return datetime.combine(timestamp.date(), CLOSE, tzinfo=NEW_YORK) <= now
    if timeframe == Timeframe.WEEK_1:  # dated by its first session: done by that Friday's
        return datetime.combine((timestamp + 4 * DAY).date(), CLOSE, tzinfo=NEW_YORK) <= now
    return timestamp + TIMEFRAMES[timeframe].length <= now


def bars_store(*, code, timeframe, bars, source, now=None):
    """Write the complete ones of ``bars`` (broker ``Bar`` records); returns how many were new.

    Bars already stored are left as they are (ON CONFLICT DO NOTHING)."""
    now = now or timezone.now()
    rows = [
        OhlcvBar(
            ticker=code,
            timeframe=timeframe,
            timestamp=bar.time,
            open=bar.open,
            high=bar.high,
            low=bar.low,
            close=bar.close,
            volume=int(bar.volume),
            source=source,
            created_at=now,
        )  # fmt: skip
        for bar in bars
        if bar_complete(timeframe, bar.time, now)
    ]
    if not rows:
        return 0
    stored = OhlcvBar.objects.filter(ticker=code, timeframe=timeframe)
    with transaction.atomic():
        before = stored.count()
        OhlcvBar.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
        return stored.count() - before


def _duration(span):
    """IB's duration covering ``span``: seconds up to a day, then days, then years."""
    seconds = span.total_seconds()
    if seconds <= 86400:
        return f"{max(60, math.ceil(seconds))} S"
    days = math.ceil(seconds / 86400)
    return f"{days} D" if days <= 365 else f"{math.ceil(days / 365)} Y"


def _chunks(start, end, size):
    """[start, end) cut into windows of at most ``size``, oldest first."""
    while start < end:
        stop = min(start + size, end)
        yield start, stop
        start = stop


def _holes(code, timeframe, after=None):
    """(after, before) of each gap between two consecutive stored bars longer than the
    timeframe's hole threshold, or, for intraday bars, within one UTC day (one session);
    with ``after``, only among the bars from then on."""
    spec = TIMEFRAMES[timeframe]
    intraday = spec.length < DAY
    table = OhlcvBar._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT previous, "timestamp" FROM (
                SELECT "timestamp", LAG("timestamp") OVER (ORDER BY "timestamp") AS previous
                FROM {table} WHERE ticker_id = %s AND timeframe = %s AND "timestamp" >= %s
            ) pairs WHERE previous IS NOT NULL
            """,  # noqa: S608 (the table name is ours)
            [code.pk, timeframe, after or datetime(1, 1, 1, tzinfo=UTC)],
        )
        pairs = cursor.fetchall()
    holes = []
    for previous, current in pairs:
        previous, current = _aware(previous), _aware(current)
        gap = current - previous
        same_session = intraday and previous.date() == current.date() and gap > spec.length
        if gap > spec.hole or same_session:
            holes.append((previous, current))
    return holes


def _aware(moment):
    if isinstance(moment, str):  # SQLite (make run's default) gives raw SQL's times as text
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _no_data(exc):
    """IB's answer for a window without any bar (before the contract's history begins)."""
    return "error 162" in str(exc) and "no data" in str(exc).lower()


def bars_check(*, symbol, bars):
    """Refuse bars with a price that is not a positive number (IB sends NaN for a gap, some
    feeds 0 or -1): a NaN cannot be stored, and a zero or negative price would feed every
    indicator and risk rule after it."""
    for bar in bars:
        for field in ("open", "high", "low", "close"):
            value = getattr(bar, field)
            if not (math.isfinite(value) and value > 0):
                moment = bar.time.isoformat()
                raise ApplicationError(
                    f"IB sent a bad {field} price for {symbol} at {moment}: {value}. "
                    "No bars of that request were stored.",
                    extra={field: f"{value} at {moment} is not a positive price."},
                )


def _request(*, code, timeframe, period, end, broker, now, on_wait=None):
    """One history request of IB, its complete bars stored; returns (how many were new, the
    bars IB sent that are not complete yet)."""
    bars = broker.historical_bars(
        contract=contract_of(code), period=period, bar=TIMEFRAMES[timeframe].bar, end=end,
        on_wait=on_wait,
    )  # fmt: skip
    bars_check(symbol=code.symbol, bars=bars)
    new = bars_store(code=code, timeframe=timeframe, bars=bars, source=BarSource.IB, now=now)
    return new, [bar for bar in bars if not bar_complete(timeframe, bar.time, now)]


def _sync_log(*, code, timeframe, fetched, error):
    if error is None:
        status = SyncStatus.SUCCESS
    else:
        status = SyncStatus.PARTIAL if fetched else SyncStatus.FAILED
    stored = OhlcvBar.objects.filter(ticker=code, timeframe=timeframe)
    span = stored.aggregate(first=Min("timestamp"), last=Max("timestamp"), total=Count("id"))
    return DataSyncLog.objects.create(
        ticker=code, timeframe=timeframe, last_synced_timestamp=span["last"],
        first_synced_timestamp=span["first"], last_sync_at=timezone.now(),
        bars_fetched=fetched, total_bars=span["total"], status=status, error_message=error,
    )  # fmt: skip


def _requests_of(windows, now):
    """IB's (duration, end) for each window; the one reaching now asks up to now."""
    return [(_duration(end - start), None if end >= now else end) for start, end in windows]


def _timeframe_checked(timeframe):
    if timeframe not in TIMEFRAMES:
        raise ApplicationError(
            f"The bar store does not sync {timeframe!r}.",
            extra={"timeframe": f"one of {', '.join(TIMEFRAMES)}"},
        )
    return TIMEFRAMES[timeframe]


def bars_sync(*, code, timeframe, broker=None, now=None):
    """Fetch from IB what the store lacks of ``code``'s ``timeframe`` bars; returns the
    ``data_sync_log`` row written (status success, partial or failed)."""
    spec = _timeframe_checked(timeframe)
    now = now or timezone.now()
    stored = OhlcvBar.objects.filter(ticker=code, timeframe=timeframe)
    latest = stored.aggregate(latest=Max("timestamp"))["latest"]
    if latest is None:
        windows = list(_chunks(now - spec.depth, now, spec.chunk))
    else:
        windows = [
            window
            for after, before in _holes(code, timeframe)
            for window in _chunks(after + spec.length, before, spec.chunk)
        ]
        windows += list(_chunks(latest + spec.length, now, spec.chunk))
    fetched, error = 0, None
    for period, end in _requests_of(windows, now):
        try:
            broker = broker or get_broker()  # an up-to-date store needs no connection
            new, _ = _request(
                code=code, timeframe=timeframe, period=period, end=end, broker=broker, now=now
            )
        except BrokerUnavailable as exc:
            error = str(exc)
            break
        except BrokerError as exc:
            if _no_data(exc):
                continue
            error = str(exc)
            break
        except ApplicationError as exc:  # bad prices: the rest waits for the next sync
            error = str(exc)
            break
        fetched += new
    return _sync_log(code=code, timeframe=timeframe, fetched=fetched, error=error)


def bars_of_period(*, code, timeframe, period, broker=None, now=None, on_wait=None):
    """``code``'s bars of ``period`` (an IB duration) up to now, served from the store
    after IB was asked only for what the store lacks: the bars after the latest stored one
    (the whole period when the store has none of it), then the part of the period before the
    first stored bar and each hole in it. Complete bars are stored (ON CONFLICT DO NOTHING);
    the session still in progress, as IB sent it, ends the list without being stored. A sync
    that asked IB writes its ``data_sync_log`` row; IB's refusal or bad prices are raised
    (after the log row), as a request of the whole period raised them.

    The period is counted back from now, as IB counts it (``_period_start``)."""
    spec = _timeframe_checked(timeframe)
    now = now or timezone.now()
    stored = OhlcvBar.objects.filter(ticker=code, timeframe=timeframe)
    latest = stored.aggregate(latest=Max("timestamp"))["latest"]
    whole = latest is None or latest < now - timedelta(seconds=duration_seconds(period))
    if whole:
        requests = [(period, None)]  # none of the period stored: as IB was asked before
    elif _weekend_only(latest + spec.length, now, dated=spec.length >= DAY):
        requests = []  # no session since the latest stored bar
    else:
        requests = _requests_of(_chunks(latest + spec.length, now, spec.chunk), now)
    fetched, pending, asked = 0, [], 0

    def ask(duration, end, missing_ok):
        """One request; IB's "no data" for a part of the period is an answer."""
        nonlocal broker, fetched, asked
        broker = broker or get_broker()
        asked += 1
        try:
            new, incomplete = _request(
                code=code, timeframe=timeframe, period=duration, end=end, broker=broker,
                now=now, on_wait=on_wait,
            )  # fmt: skip
        except BrokerError as exc:
            if not missing_ok or isinstance(exc, BrokerUnavailable) or not _no_data(exc):
                raise
            return []
        fetched += new
        return incomplete

    try:
        for duration, end in requests:
            pending = ask(duration, end, missing_ok=not whole)
        newest = max(
            [t for t in (stored.aggregate(n=Max("timestamp"))["n"],) if t is not None]
            + [bar.time for bar in pending],
            default=None,
        )
        if newest is None:
            raise ApplicationError(
                f"IB returned no bars for {code.symbol}.",
                extra={"period": f"{period} / {spec.bar}"},
            )
        start = _period_start(stored=stored, timeframe=timeframe, period=period, newest=newest,
                              pending=pending, now=now)  # fmt: skip
        first = stored.filter(timestamp__gte=start).aggregate(first=Min("timestamp"))["first"]
        earlier = _holes(code, timeframe, after=start)
        if not whole and (first is None or first - start > spec.hole):
            earlier.insert(0, (start - spec.length, first or newest))  # the period's head
        for after, before in earlier:
            for duration, end in _requests_of(
                _chunks(after + spec.length, before, spec.chunk), now
            ):
                ask(duration, end, missing_ok=True)
    except (BrokerError, ApplicationError) as exc:
        _sync_log(code=code, timeframe=timeframe, fetched=fetched, error=str(exc))
        raise
    if asked:
        _sync_log(code=code, timeframe=timeframe, fetched=fetched, error=None)
    rows = stored.filter(timestamp__gte=start).order_by("timestamp")
    bars = [
        Bar(time=_aware(t), open=o, high=h, low=lo, close=c, volume=v)
        for t, o, h, lo, c, v in rows.values_list(
            "timestamp", "open", "high", "low", "close", "volume"
        )
    ]
    last = bars[-1].time if bars else None
    return bars + [bar for bar in pending if last is None or bar.time > last]


def _weekend_only(start, end, *, dated):
    """Whether [start, end) holds New York weekend days only (no session); ``start`` of a
    timeframe ``dated`` by the session is its UTC date."""
    day = start.astimezone(UTC if dated else NEW_YORK).date()
    last = end.astimezone(NEW_YORK).date()
    while day <= last:
        if day.weekday() < 5:
            return False
        day += DAY
    return True


def _months_back(day, months):
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    days_in_month = calendar.monthrange(year, month + 1)[1]
    return day.replace(year=year, month=month + 1, day=min(day.day, days_in_month))


def _period_start(*, stored, timeframe, period, newest, pending, now):
    """The first bar time of IB's ``period`` ending now: seconds and weeks back, "N D" the
    last N sessions, months and years back to the day after the same date (as IB's year of
    daily bars begins). A store whose newest bar is more than a week before ``now`` (a feed
    that stopped, a clock pinned elsewhere) has its period end at that bar instead."""
    count, unit = period.split()
    count = int(count)
    spec = TIMEFRAMES[timeframe]
    dated = spec.length >= DAY  # dated by the session (00:00 UTC), not by the hour
    zone = UTC if dated else NEW_YORK
    fresh = now - newest <= STALE
    if unit == "S" or (unit == "W" and not dated):
        span = timedelta(seconds=count) if unit == "S" else 7 * count * DAY
        return (now if fresh else newest + spec.length) - span
    if fresh:
        day = now.astimezone(NEW_YORK).date()  # IB's today
    else:
        day = newest.astimezone(zone).date()
    if unit == "W":
        first = day - 7 * count * DAY + DAY
    elif unit == "D":
        sessions = (
            stored.annotate(day=TruncDate("timestamp", tzinfo=zone))
            .values_list("day", flat=True)
            .distinct()
            .order_by("-day")[:count]
        )
        days = sorted({*sessions, *(bar.time.astimezone(zone).date() for bar in pending)})
        first = days[-count:][0]
    else:
        first = _months_back(day, count * (12 if unit == "Y" else 1)) + DAY
    return datetime.combine(first, time(), tzinfo=zone)


def bars_sync_all(*, timeframes, broker=None, now=None):
    """Sync every active code in each of ``timeframes``; returns the log rows written. A
    gateway that cannot be reached fails each sync (logged) rather than the job."""
    logs = []
    for code in Code.objects.filter(is_active=True).order_by("symbol", "id"):
        for timeframe in timeframes:
            logs.append(bars_sync(code=code, timeframe=timeframe, broker=broker, now=now))
    return logs
