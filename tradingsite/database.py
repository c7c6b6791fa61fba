"""PostgreSQL connections read date-times with psycopg's own ``timestamptz`` loader, and write
every date-time with an offset PostgreSQL takes.

Django (5.2) puts a ``timestamptz`` loader of its own on every connection, to give date-times
the connection's time zone. It derives from psycopg's pure-Python loader, so even with
psycopg's C extension installed every date-time read goes through Python (Django ticket
#36960): a listing page of 50 orders reads 100 of them, a twentieth of the request.

``timestamptz_adapters_register`` (on ``connection_created``) puts the speed layer's loader
(``tradingsite.fast.TimestamptzLoader``, unless ``API_FAST`` is off) on the connection
instead. It gives the same date-times as Django's: the value psycopg's loader reads,
its tzinfo replaced by the connection's time zone; only the reading is psycopg's registered
loader, the C one when the extension is there. Django's ``create_cursor`` sees the same
``timezone`` on it and leaves it in place; were the connection's time zone to change (a test
overriding TIME_ZONE), Django puts its own on the cursor again, as it always does.

Python takes UTC offsets up to a day, PostgreSQL only below 16 hours ("time zone displacement
out of range"): a date-time typed into a filter or a URL as ``...-17:25`` reached the database
and failed there. ``TimestamptzDumper`` (registered by the same receiver) writes such a
date-time as its UTC moment, so whatever path brings one, the database gets a value it takes.
"""

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from django.db import connections, transaction
from psycopg import adapters
from psycopg.adapt import Dumper, PyFormat

from tradingsite.fast import TIMESTAMPTZ_OID, fast, timestamptz_loader

#: PostgreSQL refuses a UTC offset from here on (its limit is 15:59:59)
OFFSET_LIMIT = timedelta(hours=16)


def offset_storable(moment):
    """Whether PostgreSQL takes ``moment``'s UTC offset (a naive date-time has none)."""
    offset = moment.utcoffset()
    return offset is None or abs(offset) < OFFSET_LIMIT


def utc_text(moment):
    """The text of an aware date-time's UTC moment, in PostgreSQL's input syntax.

    Near the ends of the calendar the UTC moment may be one Python cannot hold (9999-12-31
    23:00 at -17:00 is 10000-01-01 16:00 UTC; 0001-01-01 05:00 at +17:00 is the day before
    year 1), whereas PostgreSQL can: it is written from the day next to it, which Python holds.
    """
    try:
        return moment.astimezone(UTC).isoformat(sep=" ").encode()
    except OverflowError:
        pass
    if moment.utcoffset() < timedelta(0):  # past the end of 9999
        day_before = (moment - timedelta(days=1)).astimezone(UTC)
        return f"10000-01-01 {day_before:%H:%M:%S.%f}+00".encode()
    day_after = (moment + timedelta(days=1)).astimezone(UTC)
    return f"0001-12-31 {day_after:%H:%M:%S.%f}+00 BC".encode()


class TimestamptzDumper(Dumper):
    """psycopg's registered date-time dumper, but for an offset PostgreSQL refuses, which is
    written as its UTC moment (``utc_text``)."""

    oid = TIMESTAMPTZ_OID
    psycopg_dumper = adapters.get_dumper(datetime, PyFormat.TEXT)

    def __init__(self, cls, context=None):
        super().__init__(cls, context)
        self._psycopg = self.psycopg_dumper(cls, context)

    def get_key(self, obj, format):
        return self._psycopg.get_key(obj, format)

    def upgrade(self, obj, format):
        return self if obj.tzinfo else self._psycopg.upgrade(obj, format)

    def dump(self, obj):
        return self._psycopg.dump(obj) if offset_storable(obj) else utc_text(obj)

    def quote(self, obj):
        if offset_storable(obj):
            return self._psycopg.quote(obj)
        return b"'" + utc_text(obj) + b"'::timestamptz"


def timestamptz_adapters_register(sender, connection, **kwargs):
    """A ``connection_created`` receiver: the loader and the dumper above on a new PostgreSQL
    connection."""
    if connection.vendor == "postgresql":
        adapters = connection.connection.adapters
        if fast("timestamptz"):  # the speed layer's loader (tradingsite.fast)
            adapters.register_loader(TIMESTAMPTZ_OID, timestamptz_loader(connection.timezone))
        adapters.register_dumper(datetime, TimestamptzDumper)


@contextmanager
def commit_without_waiting(using="default"):
    """A transaction whose commit does not wait for its WAL to reach the disk (PostgreSQL's
    ``synchronous_commit`` off, for this transaction only), for writes a crash may lose
    without harm: a run's progress, written at every step, is overwritten by the next and
    by the run's end (which is committed as every other write is). It saves the wait for the
    disk's flush at each step, which every worker's runs queue for. Other databases: a plain
    transaction."""
    with transaction.atomic(using=using):
        connection = connections[using]
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield
