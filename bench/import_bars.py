"""How fast ``import_bars`` loads a file, against raw psycopg COPY of the same rows.

    .venv/bin/python bench/import_bars.py [--rows 1000000] [--repeat 3]

Writes a CSV of ``--rows`` one-minute bars (a seeded walk), then, each on an empty
``ohlcv_bars``: (1) raw COPY: the same rows, already formatted as PostgreSQL's CSV in memory,
written with psycopg's ``cursor.copy()`` in one transaction (no reading, no checks); (2)
``bars_import`` of the file (reading with pyarrow, every row checked, COPY); (3) the same
import again over the full table (the idempotent path: a temporary table and
``INSERT ... ON CONFLICT DO NOTHING``). Database: ``tradingsite_bench_import`` on
PostgreSQL (BENCH_DATABASE_URL moves it). Goal (issue 17): the import at least 70 % of the
raw COPY's speed.
"""

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault(
    "DATABASE_URL",
    os.environ.get("BENCH_DATABASE_URL", "postgres://root@127.0.0.1:5432/tradingsite_bench_import"),
)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingsite.settings")
os.environ.setdefault("DEBUG", "true")
os.environ.pop("REDIS_URL", None)

import django  # noqa: E402

from bench.common import ensure_database  # noqa: E402


def bars(rows):
    import numpy as np

    rng = np.random.default_rng(17)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.0005, rows)))
    open_ = np.concatenate([[100.0], close[:-1]])
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.0002, rows)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.0002, rows)))
    volume = rng.integers(100, 10_000, rows)
    start = np.datetime64("2020-01-02T14:30:00")
    times = start + np.arange(rows).astype("timedelta64[m]")
    return times, open_.round(4), high.round(4), low.round(4), close.round(4), volume


def write_csv(path, columns):
    import pyarrow as pa
    import pyarrow.csv as pacsv

    times, o, h, lo, c, v = columns
    table = pa.table({
        "timestamp": pa.array(times.astype("datetime64[us]")), "open": o, "high": h, "low": lo,
        "close": c, "volume": v,
    })  # fmt: skip
    pacsv.write_csv(table, path)


def copy_text(code_id, columns):
    """The rows as PostgreSQL CSV in ohlcv_bars' column order, ready for COPY."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    times, o, h, lo, c, v = columns
    n = len(times)
    table = pa.table({
        "ticker_id": pa.array([code_id] * n, pa.int64()), "timeframe": pa.array(["1Min"] * n),
        "timestamp": pa.array(times.astype("datetime64[us]")).cast(pa.timestamp("us", tz="UTC")),
        "open": o, "high": h, "low": lo, "close": c, "volume": v,
        "trade_count": pa.nulls(n, pa.int64()), "source": pa.array(["csv_import"] * n),
        "created_at": pa.array(times.astype("datetime64[us]")).cast(pa.timestamp("us", tz="UTC")),
    })  # fmt: skip
    out = io.BytesIO()
    pacsv.write_csv(table, out, pacsv.WriteOptions(include_header=False))
    return out.getvalue()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    ensure_database(os.environ["DATABASE_URL"])
    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    # The site's modules once main() has set Django up (this script picks its database first).
    from marketdata.bar_import import COPY_COLUMNS, bars_import
    from marketdata.models import Code, OhlcvBar

    call_command("migrate", verbosity=0)
    code, _ = Code.objects.get_or_create(conid=999001, defaults={"symbol": "BENCH"})
    columns = bars(options.rows)
    directory = tempfile.mkdtemp()
    path = os.path.join(directory, "bench.csv")
    write_csv(path, columns)
    text = copy_text(code.pk, columns)
    statement = f"COPY ohlcv_bars ({', '.join(COPY_COLUMNS)}) FROM STDIN WITH (FORMAT csv)"

    def empty():
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE ohlcv_bars")
            cursor.execute("VACUUM ANALYZE ohlcv_bars")

    def raw_copy():
        with transaction.atomic(), connection.cursor() as cursor:
            with cursor.cursor.copy(statement) as copy:
                for start in range(0, len(text), 1 << 20):
                    copy.write(text[start : start + (1 << 20)])

    def imported():
        report = bars_import(paths=[path], code=code, timeframe="1Min")
        assert report.rows == options.rows

    times = {"raw COPY": [], "import_bars": [], "import_bars again (all stored)": []}
    for _ in range(options.repeat):
        empty()
        started = time.perf_counter()
        raw_copy()
        times["raw COPY"].append(time.perf_counter() - started)
        assert OhlcvBar.objects.count() == options.rows
        empty()
        started = time.perf_counter()
        imported()
        times["import_bars"].append(time.perf_counter() - started)
        assert OhlcvBar.objects.count() == options.rows
        started = time.perf_counter()
        imported()
        times["import_bars again (all stored)"].append(time.perf_counter() - started)
        assert OhlcvBar.objects.count() == options.rows
    raw = statistics.median(times["raw COPY"])
    print(f"{options.rows:,} one-minute bars, median of {options.repeat}")
    print(f"{'':34}{'seconds':>9}{'rows/s':>12}{'vs COPY':>9}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:34}{median:9.2f}{options.rows / median:12,.0f}{raw / median:9.0%}")
    empty()


if __name__ == "__main__":
    main()
