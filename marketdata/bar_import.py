"""``import_bars``: OHLCV bars from CSV and Parquet files into the bar store, all or nothing.

Files are read with pyarrow (a CSV header names the columns; ``timestamp``, ``date``,
``datetime`` or ``time`` for the time, ``open``, ``high``, ``low``, ``close``, ``volume``,
optionally ``trade_count``; any case). Times without a zone are taken in ``tz`` and stored in
UTC; a date without a time of day is the session's date at 00:00 UTC, as IB dates daily bars.

Every row is checked first (one vectorised pass), and a file with a bad row is refused as a
whole, naming each bad row's line (CSV, the header is line 1) or row (Parquet) and why;
nothing of any file is written then. The rows are written with PostgreSQL's COPY: straight
into ``ohlcv_bars`` when the store holds none of the code's bars in the files' time span (a
first import), else through a temporary table and ``INSERT ... ON CONFLICT DO NOTHING``, so
that an import repeated is idempotent. Other databases (the embedded SQLite) get Django's
``bulk_create(ignore_conflicts=True)``.
"""

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from tradingsite.exceptions import ApplicationError

from .models import BarSource, Code, OhlcvBar, Timeframe

TIME_COLUMNS = ("timestamp", "date", "datetime", "time")
PRICES = ("open", "high", "low", "close")
MAX_REPORTED = 20  # bad rows named in the refusal; the count says how many more
COPY_COLUMNS = (
    "ticker_id", "timeframe", "timestamp", "open", "high", "low", "close", "volume",
    "trade_count", "source", "created_at",
)  # fmt: skip


@dataclass(frozen=True)
class ImportReport:
    rows: int  # rows read from the files
    created: int  # bars new to the store (the others were stored already)
    files: int


def _refuse(path, problems):
    """Refusal naming the file and up to MAX_REPORTED of its bad rows."""
    shown = "; ".join(problems[:MAX_REPORTED])
    more = len(problems) - MAX_REPORTED
    if more > 0:
        shown += f"; and {more} more"
    raise ApplicationError(
        f"{path}: {len(problems)} bad row{'s' if len(problems) != 1 else ''}, nothing was "
        f"imported: {shown}",
        extra={"file": shown},
    )


def _read(path):
    """(pyarrow table, 'csv' or 'parquet', the line/row number of the first row)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    suffix = Path(path).suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pq.read_table(path), "parquet", 1
        if suffix in (".csv", ".txt"):
            # Every column as text: a value that is not a number is then named at its line
            # (pyarrow's own typed read would refuse the whole column without saying where).
            with open(path, "rb") as handle:
                header = handle.readline().decode("utf-8", "replace").strip().split(",")
            types = {name.strip(): pa.string() for name in header}
            options = pacsv.ConvertOptions(column_types=types, strings_can_be_null=True)
            return pacsv.read_csv(path, convert_options=options), "csv", 2
    except FileNotFoundError:
        raise ApplicationError(f"{path}: no such file.", extra={"file": "no such file"}) from None
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
        raise ApplicationError(f"{path}: not readable: {exc}", extra={"file": str(exc)}) from None
    raise ApplicationError(
        f"{path}: not a .csv or .parquet file.", extra={"file": "use .csv or .parquet"}
    )


def _column(table, names, path):
    lowered = {name.strip().lower(): name for name in table.column_names}
    for name in names:
        if name in lowered:
            return table.column(lowered[name])
    wanted = " or ".join(names)
    raise ApplicationError(
        f"{path}: no {wanted} column (columns: {', '.join(table.column_names)}).",
        extra={"file": f"missing column {wanted}"},
    )


def _numbers(column):
    """float64 values of a column (text or numbers); NaN where a value is not a number."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        trimmed = pc.utf8_trim_whitespace(column)
        try:
            return pc.cast(trimmed, pa.float64()).to_numpy(zero_copy_only=False)
        except pa.ArrowInvalid:
            # Some value is not a number: the slow way, to find which.
            import pandas as pd

            return pd.to_numeric(trimmed.to_pandas(), errors="coerce").to_numpy(dtype=float)
    return pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)


def _times(column, tz):
    """int64 microseconds since the epoch (UTC) of each value, with a mask of unreadable ones."""
    import pyarrow as pa
    import pyarrow.compute as pc

    zoned_text = None  # text times that name their zone or offset keep it
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        column = pc.utf8_trim_whitespace(column)
        zoned_text = pc.fill_null(pc.match_substring_regex(column, r"(Z|[+-]\d\d:?\d\d)$"), False)
        zoned_text = np.asarray(zoned_text.to_numpy(zero_copy_only=False), dtype=bool)
        try:
            column = pc.cast(column, pa.timestamp("us"))
        except pa.ArrowInvalid:
            import pandas as pd

            parsed = pd.to_datetime(column.to_pandas(), errors="coerce", format="ISO8601")
            if parsed.dt.tz is not None:
                parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
            column = pa.array(parsed, type=pa.timestamp("us"))
    elif pa.types.is_date(column.type):
        column = pc.cast(pc.cast(column, pa.date32()), pa.timestamp("us"))
    elif pa.types.is_timestamp(column.type):
        column = pc.cast(column, pa.timestamp("us", tz=column.type.tz))
    else:
        raise ApplicationError(
            f"times of type {column.type} are not dates or date-times",
            extra={"file": "unreadable time column"},
        )
    bad = np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    raw = _int64(column)
    if column.type.tz is None and tz != "UTC":
        # A naive date-time is in ``tz``; a plain date (midnight) is the session's date, UTC.
        zoned = pc.assume_timezone(column, timezone=tz, ambiguous="earliest",
                                   nonexistent="earliest")  # fmt: skip
        kept = raw % 86_400_000_000 == 0
        if zoned_text is not None:
            kept |= zoned_text
        raw = np.where(kept, raw, _int64(zoned))
    return raw, bad


def _int64(column):
    import pyarrow as pa
    import pyarrow.compute as pc

    values = pc.fill_null(pc.cast(column, pa.int64()), 0)
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.int64)


def _check(path, columns, bad_time, first_line, kind):
    """Each bad row's 'line N: reason', in file order."""
    o, h, lo, c, v = (columns[name] for name in (*PRICES, "volume"))
    reasons = {}

    def flag(mask, reason):
        for index in np.flatnonzero(mask):
            reasons.setdefault(int(index), []).append(reason)

    flag(bad_time, "the time is not a date or date-time")
    for name in PRICES:
        values = columns[name]
        flag(~np.isfinite(values), f"{name} is not a number")
        flag(np.isfinite(values) & (values <= 0), f"{name} is not positive")
    with np.errstate(invalid="ignore"):
        flag(h < lo, "high is under low")
        flag((h < o) | (h < c), "high is under open or close")
        flag((lo > o) | (lo > c), "low is over open or close")
        flag(~np.isfinite(v) | (v < 0) | (v != np.floor(v)), "volume is not a whole number >= 0")
    word = "line" if kind == "csv" else "row"
    return [
        f"{word} {index + first_line}: {', '.join(why)}" for index, why in sorted(reasons.items())
    ]


def _duplicates(times, first_line, kind):
    order = np.argsort(times, kind="stable")
    ordered = times[order]
    repeated = np.flatnonzero(ordered[1:] == ordered[:-1])
    word = "line" if kind == "csv" else "row"
    return [
        f"{word} {int(order[i + 1]) + first_line}: the same time as {word} "
        f"{int(order[i]) + first_line}"
        for i in repeated
    ]


def _load(path, tz):
    """The checked rows of one file: (times in UTC microseconds, {column: values}, kind)."""
    table, kind, first_line = _read(path)
    times, bad_time = _times(_column(table, TIME_COLUMNS, path), tz)
    columns = {name: _numbers(_column(table, (name,), path)) for name in (*PRICES, "volume")}
    names = {name.strip().lower() for name in table.column_names}
    if "trade_count" in names:
        columns["trade_count"] = _numbers(_column(table, ("trade_count",), path))
    problems = _check(path, columns, bad_time, first_line, kind)
    if not problems:
        problems = _duplicates(times, first_line, kind)
    if problems:
        _refuse(path, problems)
    return times, columns, kind


def bars_import(*, paths, code, timeframe, tz="UTC"):
    """Import ``paths`` (CSV or Parquet) as ``code``'s ``timeframe`` bars; returns an
    ImportReport. A bad row anywhere refuses every file: nothing is written."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if timeframe not in Timeframe.values:
        raise ApplicationError(
            f"{timeframe!r} is not a timeframe of the bar store.",
            extra={"timeframe": f"one of {', '.join(Timeframe.values)}"},
        )
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ApplicationError(
            f"{tz!r} is not a time zone.", extra={"tz": "an IANA zone such as America/New_York"}
        ) from None
    loaded = [(_load(path, tz), path) for path in paths]
    rows = sum(len(times) for (times, _, _), _ in loaded)
    with transaction.atomic():
        # One import of a code at a time: the fast path's check below must stay true.
        Code.objects.select_for_update().filter(pk=code.pk).first()
        stored = OhlcvBar.objects.filter(ticker=code, timeframe=timeframe)
        before = stored.count()
        for (times, columns, kind), _ in loaded:
            source = BarSource.PARQUET_IMPORT if kind == "parquet" else BarSource.CSV_IMPORT
            _write(code=code, timeframe=timeframe, times=times, columns=columns, source=source)
        created = stored.count() - before
    return ImportReport(rows=rows, created=created, files=len(paths))


def _arrow_rows(*, code, timeframe, times, columns, source):
    """The rows as an Arrow table in ``COPY_COLUMNS`` order."""
    import pyarrow as pa

    count = len(times)

    def constant(value, type_):
        return pa.array([value], type_).take(pa.array(np.zeros(count, dtype=np.int64)))

    trade_count = columns.get("trade_count")
    if trade_count is None:
        trade_counts = pa.nulls(count, pa.int64())
    else:
        known = np.isfinite(trade_count)
        trade_counts = pa.array(np.where(known, trade_count, 0).astype(np.int64), mask=~known)
    return pa.table(
        {
            "ticker_id": constant(code.pk, pa.int64()),
            "timeframe": constant(str(timeframe), pa.string()),
            "timestamp": pa.array(times, pa.timestamp("us", tz="UTC")),
            **{name: pa.array(columns[name], pa.float64()) for name in PRICES},
            "volume": pa.array(columns["volume"].astype(np.int64)),
            "trade_count": trade_counts,
            "source": constant(str(source), pa.string()),
            "created_at": constant(timezone.now(), pa.timestamp("us", tz="UTC")),
        }
    )


def _write(*, code, timeframe, times, columns, source):
    if not len(times):
        return
    if connection.vendor != "postgresql":
        _write_orm(code=code, timeframe=timeframe, times=times, columns=columns, source=source)
        return
    import pyarrow.csv as pacsv

    table = _arrow_rows(code=code, timeframe=timeframe, times=times, columns=columns,
                        source=source)  # fmt: skip
    text = io.BytesIO()
    pacsv.write_csv(table, text, pacsv.WriteOptions(include_header=False))
    first, last = _moment(times.min()), _moment(times.max())
    fresh = not OhlcvBar.objects.filter(
        ticker=code, timeframe=timeframe, timestamp__gte=first, timestamp__lte=last
    ).exists()
    names = ", ".join(COPY_COLUMNS)
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's own, for COPY
        if fresh:
            _copy(raw, f"COPY ohlcv_bars ({names}) FROM STDIN WITH (FORMAT csv)", text)
            return
        raw.execute("DROP TABLE IF EXISTS ohlcv_bars_import")
        raw.execute(
            f"CREATE TEMPORARY TABLE ohlcv_bars_import ON COMMIT DROP AS "
            f"SELECT {names} FROM ohlcv_bars WITH NO DATA"
        )
        _copy(raw, f"COPY ohlcv_bars_import ({names}) FROM STDIN WITH (FORMAT csv)", text)
        raw.execute(
            f"INSERT INTO ohlcv_bars ({names}) SELECT {names} FROM ohlcv_bars_import "
            "ON CONFLICT (ticker_id, timeframe, timestamp) DO NOTHING"
        )


def _copy(raw, statement, text):
    view = text.getbuffer()
    with raw.copy(statement) as copy:
        for start in range(0, len(view), 1 << 20):
            copy.write(view[start : start + (1 << 20)])


def _moment(microseconds):
    from datetime import UTC, datetime, timedelta

    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(microseconds))


def _write_orm(*, code, timeframe, times, columns, source):
    now = timezone.now()
    trade_count = columns.get("trade_count")
    OhlcvBar.objects.bulk_create(
        (
            OhlcvBar(
                ticker=code, timeframe=timeframe, timestamp=_moment(times[i]),
                open=float(columns["open"][i]), high=float(columns["high"][i]),
                low=float(columns["low"][i]), close=float(columns["close"][i]),
                volume=int(columns["volume"][i]),
                trade_count=None if trade_count is None or not np.isfinite(trade_count[i])
                else int(trade_count[i]),
                source=source, created_at=now,
            )
            for i in range(len(times))
        ),
        ignore_conflicts=True,
        batch_size=2000,
    )  # fmt: skip
