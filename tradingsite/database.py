"""PostgreSQL connections read date-times with psycopg's own ``timestamptz`` loader.

Django (5.2) puts a ``timestamptz`` loader of its own on every connection, to give date-times
the connection's time zone. It derives from psycopg's pure-Python loader, so even with
psycopg's C extension installed every date-time read goes through Python (Django ticket
#36960): a listing page of 50 orders reads 100 of them, a twentieth of the request.

``timestamptz_loader_register`` (on ``connection_created``) puts this loader on the
connection instead. It gives the same date-times as Django's: the value psycopg's loader reads,
its tzinfo replaced by the connection's time zone; only the reading is psycopg's registered
loader, the C one when the extension is there. Django's ``create_cursor`` sees the same
``timezone`` on it and leaves it in place; were the connection's time zone to change (a test
overriding TIME_ZONE), Django puts its own on the cursor again, as it always does.
"""

from functools import cache

from psycopg import adapters
from psycopg.adapt import Loader
from psycopg.pq import Format

TIMESTAMPTZ_OID = adapters.types["timestamptz"].oid


class TimestamptzLoader(Loader):
    """psycopg's registered ``timestamptz`` loader, its tzinfo replaced as Django's does."""

    timezone = None  # the connection's (None: naive date-times, as with USE_TZ = False)
    psycopg_loader = adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)

    def __init__(self, oid, context=None):
        super().__init__(oid, context)
        self._load = self.psycopg_loader(oid, context).load

    def load(self, data):
        return self._load(data).replace(tzinfo=self.timezone)


@cache
def timestamptz_loader(timezone):
    return type(
        "TimestamptzLoader", (TimestamptzLoader,), {"timezone": timezone, "__module__": __name__}
    )


def timestamptz_loader_register(sender, connection, **kwargs):
    """A ``connection_created`` receiver: the loader above on a new PostgreSQL connection."""
    if connection.vendor == "postgresql":
        connection.connection.adapters.register_loader(
            TIMESTAMPTZ_OID, timestamptz_loader(connection.timezone)
        )
