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

import math
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Count, Max, Min
from django.utils import timezone

from tradingsite.broker import BrokerError, BrokerUnavailable, get_broker
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


def _holes(code, timeframe):
    """(after, before) of each gap between two consecutive stored bars longer than the
    timeframe's hole threshold, or, for intraday bars, within one UTC day (one session)."""
    spec = TIMEFRAMES[timeframe]
    intraday = spec.length < DAY
    table = OhlcvBar._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT previous, "timestamp" FROM (
                SELECT "timestamp", LAG("timestamp") OVER (ORDER BY "timestamp") AS previous
                FROM {table} WHERE ticker_id = %s AND timeframe = %s
            ) pairs WHERE previous IS NOT NULL
            """,  # noqa: S608 (the table name is ours)
            [code.pk, timeframe],
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
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _no_data(exc):
    """IB's answer for a window without any bar (before the contract's history begins)."""
    return "error 162" in str(exc) and "no data" in str(exc).lower()


def bars_sync(*, code, timeframe, broker=None, now=None):
    """Fetch from IB what the store lacks of ``code``'s ``timeframe`` bars; returns the
    ``data_sync_log`` row written (status success, partial or failed)."""
    if timeframe not in TIMEFRAMES:
        raise ApplicationError(
            f"The bar store does not sync {timeframe!r}.",
            extra={"timeframe": f"one of {', '.join(TIMEFRAMES)}"},
        )
    spec = TIMEFRAMES[timeframe]
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
    for start, end in windows:
        try:
            broker = broker or get_broker()  # an up-to-date store needs no connection
            bars = broker.historical_bars(
                contract=contract_of(code), period=_duration(end - start), bar=spec.bar,
                end=None if end >= now else end,
            )  # fmt: skip
        except BrokerUnavailable as exc:
            error = str(exc)
            break
        except BrokerError as exc:
            if _no_data(exc):
                continue
            error = str(exc)
            break
        fetched += bars_store(
            code=code, timeframe=timeframe, bars=bars, source=BarSource.IB, now=now
        )
    if error is None:
        status = SyncStatus.SUCCESS
    else:
        status = SyncStatus.PARTIAL if fetched else SyncStatus.FAILED
    span = stored.aggregate(first=Min("timestamp"), last=Max("timestamp"), total=Count("id"))
    return DataSyncLog.objects.create(
        ticker=code, timeframe=timeframe, last_synced_timestamp=span["last"],
        first_synced_timestamp=span["first"], last_sync_at=timezone.now(),
        bars_fetched=fetched, total_bars=span["total"], status=status, error_message=error,
    )  # fmt: skip


def bars_sync_all(*, timeframes, broker=None, now=None):
    """Sync every active code in each of ``timeframes``; returns the log rows written. A
    gateway that cannot be reached fails each sync (logged) rather than the job."""
    logs = []
    for code in Code.objects.filter(is_active=True).order_by("symbol", "id"):
        for timeframe in timeframes:
            logs.append(bars_sync(code=code, timeframe=timeframe, broker=broker, now=now))
    return logs
