"""``manage.py import_bars``: CSV and Parquet into the bar store, all or nothing, idempotent."""

from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command

from marketdata.models import OhlcvBar
from marketdata.tests.factories import CodeFactory, OhlcvBarFactory

pytestmark = pytest.mark.django_db

DAILY = """date,open,high,low,close,volume
2025-03-10,100.0,101.5,99.0,101.0,1200
2025-03-11,101.0,102.0,100.5,101.5,1300
2025-03-12,101.5,103.0,101.0,102.5,1400
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def import_bars(*args):
    from io import StringIO

    out = StringIO()
    call_command("import_bars", *args, stdout=out)
    return out.getvalue().strip()


def bars(code, timeframe="1Day"):
    return list(
        OhlcvBar.objects.filter(ticker=code, timeframe=timeframe)
        .order_by("timestamp")
        .values_list("timestamp", "open", "high", "low", "close", "volume", "source")
    )


def test_a_csv_of_daily_bars_is_stored_at_each_sessions_date(tmp_path):
    code = CodeFactory(symbol="AAPL")

    said = import_bars(write(tmp_path, "aapl.csv", DAILY), "--symbol", "aapl",
                       "--timeframe", "1Day")  # fmt: skip

    assert said == "AAPL 1Day: 3 rows read from 1 file, 3 new bars stored (0 were stored already)"
    assert bars(code) == [
        (datetime(2025, 3, 10, tzinfo=UTC), 100.0, 101.5, 99.0, 101.0, 1200, "csv_import"),
        (datetime(2025, 3, 11, tzinfo=UTC), 101.0, 102.0, 100.5, 101.5, 1300, "csv_import"),
        (datetime(2025, 3, 12, tzinfo=UTC), 101.5, 103.0, 101.0, 102.5, 1400, "csv_import"),
    ]


def test_naive_times_are_taken_in_the_given_zone_and_stored_in_utc(tmp_path):
    code = CodeFactory(symbol="MSFT")
    text = (
        "timestamp,open,high,low,close,volume\n"
        "2025-01-10 09:30:00,10,11,9,10.5,5\n"  # EST: UTC-5
        "2025-03-10 09:30:00,10,11,9,10.5,5\n"  # EDT (from March 9): UTC-4
    )

    import_bars(write(tmp_path, "m.csv", text), "--symbol", "MSFT", "--timeframe", "1Min",
                "--tz", "America/New_York")  # fmt: skip

    assert [row[0] for row in bars(code, "1Min")] == [
        datetime(2025, 1, 10, 14, 30, tzinfo=UTC),
        datetime(2025, 3, 10, 13, 30, tzinfo=UTC),
    ]


def test_times_with_a_zone_keep_it_whatever_tz_says(tmp_path):
    code = CodeFactory(symbol="MSFT")
    text = "timestamp,open,high,low,close,volume\n2025-03-10T09:30:00-04:00,10,11,9,10.5,5\n"

    import_bars(write(tmp_path, "m.csv", text), "--symbol", "MSFT", "--timeframe", "1Min",
                "--tz", "Asia/Tokyo")  # fmt: skip

    assert [row[0] for row in bars(code, "1Min")] == [datetime(2025, 3, 10, 13, 30, tzinfo=UTC)]


def test_a_parquet_file_is_imported(tmp_path):
    code = CodeFactory(symbol="SPY")
    table = pa.table(
        {
            "Timestamp": pa.array(
                [datetime(2025, 3, 10, 14, tzinfo=UTC), datetime(2025, 3, 10, 15, tzinfo=UTC)],
                pa.timestamp("ns", tz="UTC"),
            ),
            "Open": [500.0, 501.0],
            "High": [502.0, 503.0],
            "Low": [499.0, 500.5],
            "Close": [501.0, 502.5],
            "Volume": pa.array([10_000, 12_000], pa.int64()),
            "trade_count": pa.array([120, None], pa.int64()),
        }
    )
    path = tmp_path / "spy.parquet"
    pq.write_table(table, path)

    import_bars(str(path), "--symbol", "SPY", "--timeframe", "1Hour")

    source = "parquet_import"
    assert bars(code, "1Hour") == [
        (datetime(2025, 3, 10, 14, tzinfo=UTC), 500.0, 502.0, 499.0, 501.0, 10_000, source),
        (datetime(2025, 3, 10, 15, tzinfo=UTC), 501.0, 503.0, 500.5, 502.5, 12_000, source),
    ]
    assert list(OhlcvBar.objects.order_by("timestamp").values_list("trade_count", flat=True)) == [
        120,
        None,
    ]


def test_bad_rows_are_named_by_line_and_nothing_of_any_file_is_imported(tmp_path):
    code = CodeFactory(symbol="AAPL")
    good = write(tmp_path, "good.csv", DAILY)
    bad = write(
        tmp_path,
        "bad.csv",
        "date,open,high,low,close,volume\n"
        "2025-03-13,100,101,99,100.5,10\n"
        "2025-03-14,100,98,99,100.5,10\n"  # line 3: high under low
        "2025-03-17,100,101,99,abc,10\n"  # line 4: close not a number
        "2025-03-18,100,101,99,100.5,-4\n"  # line 5: volume negative
        "someday,100,101,99,100.5,10\n",  # line 6: no date
    )

    with pytest.raises(CommandError) as refused:
        import_bars(good, bad, "--symbol", "AAPL", "--timeframe", "1Day")

    message = str(refused.value)
    assert message.startswith(f"{bad}: 4 bad rows, nothing was imported: ")
    assert "line 3: high is under low, high is under open or close" in message
    assert "line 4: close is not a number" in message
    assert "line 5: volume is not a whole number >= 0" in message
    assert "line 6: the time is not a date or date-time" in message
    assert "line 2" not in message
    assert bars(code) == []


def test_a_time_given_twice_in_a_file_is_refused(tmp_path):
    code = CodeFactory(symbol="AAPL")
    text = DAILY + "2025-03-11,101.0,102.0,100.5,101.5,1300\n"

    with pytest.raises(CommandError, match="line 5: the same time as line 3"):
        import_bars(write(tmp_path, "d.csv", text), "--symbol", "AAPL", "--timeframe", "1Day")
    assert bars(code) == []


def test_importing_again_adds_nothing_and_an_overlap_adds_only_the_new_bars(tmp_path):
    code = CodeFactory(symbol="AAPL")
    path = write(tmp_path, "d.csv", DAILY)
    import_bars(path, "--symbol", "AAPL", "--timeframe", "1Day")
    first = bars(code)

    said = import_bars(path, "--symbol", "AAPL", "--timeframe", "1Day")

    assert said.endswith("0 new bars stored (3 were stored already)")
    assert bars(code) == first
    more = write(tmp_path, "more.csv", DAILY.splitlines()[0] + "\n" + DAILY.splitlines()[3] +
                 "\n2025-03-13,102.5,104.0,102.0,103.5,1500\n")  # fmt: skip
    said = import_bars(more, "--symbol", "AAPL", "--timeframe", "1Day")
    assert said.endswith("1 new bars stored (1 were stored already)")
    assert len(bars(code)) == 4


def test_bars_synced_from_ib_are_kept_when_a_file_has_the_same_times(tmp_path):
    code = CodeFactory(symbol="AAPL")
    OhlcvBarFactory(ticker=code, timestamp=datetime(2025, 3, 11, tzinfo=UTC), close=100.5)

    import_bars(write(tmp_path, "d.csv", DAILY), "--symbol", "AAPL", "--timeframe", "1Day")

    assert [(row[0].day, row[4], row[6]) for row in bars(code)] == [
        (10, 101.0, "csv_import"),
        (11, 100.5, "ib"),
        (12, 102.5, "csv_import"),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--symbol", "NOPE", "--timeframe", "1Day"], "No code NOPE is stored"),
        (["--symbol", "AAPL", "--timeframe", "1Day", "--tz", "Mars/Olympus"], "not a time zone"),
    ],
)
def test_bad_arguments_say_what_is_wrong(tmp_path, args, message):
    CodeFactory(symbol="AAPL")
    with pytest.raises(CommandError, match=message):
        import_bars(write(tmp_path, "d.csv", DAILY), *args)


def test_a_file_without_a_price_column_is_refused(tmp_path):
    CodeFactory(symbol="AAPL")
    with pytest.raises(CommandError, match="no close column"):
        import_bars(write(tmp_path, "d.csv", "date,open,high,low,volume\n2025-03-10,1,2,1,5\n"),
                    "--symbol", "AAPL", "--timeframe", "1Day")  # fmt: skip


def test_the_conid_stores_a_new_code(tmp_path):
    import_bars(write(tmp_path, "d.csv", DAILY), "--symbol", "NVDA", "--conid", "4815747",
                "--timeframe", "1Day")  # fmt: skip

    assert OhlcvBar.objects.filter(ticker__conid=4815747, ticker__symbol="NVDA").count() == 3
