"""The orders listing of the API on a million orders, beside the same rows read raw.

    .venv/bin/python bench/api.py [--orders 1000000] [--requests 300] [--reload]

Loads ``--orders`` orders, each with the decision that made it, by PostgreSQL COPY into the
database `tradingsite_bench_api` (created and migrated here; BENCH_DATABASE_URL moves it;
a database already holding that many orders is reused). Then, in the same run and turn by
turn, it times:

- ``GET /api/orders/?status=filled``: the first page (50 rows), through Django's WSGI handler
  (middleware, URL routing, token authentication, throttling, filters, cursor pagination,
  serializers and JSON rendering), with DEBUG off as in production and persistent database
  connections (CONN_MAX_AGE, as a production site sets it);
- the same 50 rows read with one psycopg query and serialised with ``json.dumps``.

It prints p50 and p99 of each and their ratio. Goal: the API's p50 at most 3x the raw p50.

``--each-override`` weighs the speed layer (``tradingsite/fast.py``) instead: in the same run,
turn by turn, the API with every override on, with all off (``API_FAST=false``) and with each
one off alone (``API_FAST_OFF``), each beside the raw read, and prints each one's ratio;
``--together a,b`` (repeatable) adds those overrides off at once.
"""

import argparse
import io
import json
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault(
    "DATABASE_URL",
    os.environ.get("BENCH_DATABASE_URL", "postgres://root@127.0.0.1:5432/tradingsite_bench_api"),
)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingsite.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-not-a-secret")
os.environ.setdefault("CONN_MAX_AGE", "600")
os.environ.setdefault("API_THROTTLE_USER", "1000000/min")  # throttled, but never refused here
os.environ.pop("REDIS_URL", None)

import django  # noqa: E402

from bench.common import ensure_database  # noqa: E402

PAGE = 50
STATUSES = [  # (status, share of the orders)
    ("filled", 0.45), ("cancelled", 0.25), ("submitted", 0.15), ("rejected", 0.1),
    ("partially_filled", 0.05),
]  # fmt: skip
SYMBOLS = 200

RAW_QUERY = """
    SELECT o.id, o.decision_id, d.strategy_id, o.ibkr_order_id, o.conid,
           (SELECT c.symbol FROM code c WHERE c.conid = o.conid LIMIT 1) AS symbol,
           o.side, o.quantity, o.price, o.order_type, o.tif, o.status, o.filled_quantity,
           o.avg_fill_price, o.created_at, o.updated_at
      FROM orders o LEFT JOIN decision d ON d.id = o.decision_id
     WHERE o.status = %s
     ORDER BY o.created_at DESC, o.id DESC
     LIMIT %s
"""


def load(connection, count):
    """Codes and a strategy through the services; decisions and orders by COPY."""
    # The site's modules once main() has set Django up (this script picks its database first).
    from marketdata.models import Code
    from marketdata.services import code_create
    from orders.models import Order
    from strategies.models import Decision, Strategy
    from workflows.services import strategy_create

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE orders, trades, positions, order_executions, decision CASCADE")
    codes = [
        Code.objects.filter(conid=5_000_000 + n).first()
        or code_create(symbol=f"B{n:03d}", conid=5_000_000 + n)
        for n in range(SYMBOLS)
    ]
    strategy = Strategy.objects.filter(name="Bench").first() or strategy_create(
        name="Bench", type="two_indicator", param={}, codes=codes[:1]
    )
    rng = random.Random(20251123)
    weights = [share for _, share in STATUSES]
    names = [status for status, _ in STATUSES]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    seconds = int(timedelta(days=365).total_seconds())
    raw = connection.connection  # psycopg's own connection: COPY goes through it
    started = time.perf_counter()
    with raw.cursor() as cursor:
        with cursor.copy(
            "COPY decision (id, code_id, strategy_id, type, current_price, target_price, "
            "stop_loss, profit_margin, r_coefficient, analysis_text, status, llm_model, "
            "created_at) FROM STDIN"
        ) as copy:
            for n in range(1, count + 1):
                price = Decimal(rng.randint(1000, 50000)) / 100
                buy = n % 2
                target = price * (Decimal("1.1") if buy else Decimal("0.9"))
                stop = price * (Decimal("0.95") if buy else Decimal("1.05"))
                copy.write_row((
                    n, codes[n % len(codes)].pk, strategy.pk, "buy" if buy else "sell",
                    price, target.quantize(Decimal("0.000001")), stop.quantize(Decimal("0.000001")),
                    Decimal("0.1"), Decimal("-2"), "", "success", "",
                    start + timedelta(seconds=rng.randrange(seconds)),
                ))  # fmt: skip
        with cursor.copy(
            "COPY orders (id, decision_id, ibkr_order_id, conid, side, quantity, price, "
            "order_type, tif, status, filled_quantity, avg_fill_price, created_at, updated_at) "
            "FROM STDIN"
        ) as copy:
            for n in range(1, count + 1):
                status = rng.choices(names, weights)[0]
                quantity = Decimal(rng.randint(1, 500))
                price = Decimal(rng.randint(1000, 50000)) / 100
                filled = quantity if status == "filled" else Decimal(0)
                at = start + timedelta(seconds=rng.randrange(seconds))
                copy.write_row((
                    n, n, 100_000 + n, codes[n % len(codes)].conid, "BUY" if n % 2 else "SELL",
                    quantity, price, "LMT", "DAY", status, filled,
                    price if filled else None, at, at,
                ))  # fmt: skip
    with connection.cursor() as cursor:
        for table in ("decision", "orders"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM "
                f"{table}))"
            )
        cursor.execute("ANALYZE decision")
        cursor.execute("ANALYZE orders")
    print(f"loaded {count:,} decisions and orders by COPY in {time.perf_counter() - started:.1f}s")
    assert Decision.objects.count() == Order.objects.count() == count


def percentile(samples, share):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--reload", action="store_true", help="load the orders again")
    parser.add_argument(
        "--each-override", action="store_true", help="weigh each override of tradingsite/fast.py"
    )
    parser.add_argument(
        "--together", action="append", default=[], help="with --each-override: NAME,NAME off"
    )
    args = parser.parse_args()

    ensure_database(os.environ["DATABASE_URL"])
    django.setup()
    import psycopg
    from django.contrib.auth import get_user_model
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.management import call_command
    from django.db import connection
    from rest_framework.authtoken.models import Token

    # The site's modules once main() has set Django up (this script picks its database first).
    from orders.models import Order

    call_command("migrate", verbosity=0)
    if args.reload or Order.objects.count() != args.orders:
        load(connection, args.orders)
    user, _ = get_user_model().objects.get_or_create(username="bench")
    token, _ = Token.objects.get_or_create(user=user)
    handler = WSGIHandler()  # tradingsite.wsgi's, without its start-up check of the database

    db = connection.settings_dict
    server = {
        "dbname": db["NAME"], "user": db["USER"], "host": db["HOST"], "port": db["PORT"] or 5432,
        "password": db["PASSWORD"] or None, "autocommit": True,
    }  # fmt: skip
    # Django binds parameters on the client (its default), so PostgreSQL plans every query;
    # "raw" does the same. "prepared" is psycopg's own default (server-side binding, a plan
    # prepared after five runs), which Django reaches with OPTIONS server_side_binding.
    raw = psycopg.connect(**server, cursor_factory=psycopg.ClientCursor)
    prepared = psycopg.connect(**server)
    keys = [
        "id", "decision_id", "strategy_id", "ibkr_order_id", "conid", "symbol", "side",
        "quantity", "price", "order_type", "tif", "status", "filled_quantity", "avg_fill_price",
        "created_at", "updated_at",
    ]  # fmt: skip
    environ = {
        "REQUEST_METHOD": "GET", "PATH_INFO": "/api/orders/", "QUERY_STRING": "status=filled",
        "SERVER_NAME": "localhost", "SERVER_PORT": "443", "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "https", "wsgi.errors": sys.stderr,
        "HTTP_AUTHORIZATION": f"Token {token.key}",
    }  # fmt: skip

    def api():
        answer = []
        body = b"".join(
            handler({**environ, "wsgi.input": io.BytesIO()}, lambda s, h, *a: answer.append(s))
        )
        assert answer == ["200 OK"], body[:500]
        return json.loads(body)["results"]

    def direct(conn):
        def read():
            rows = conn.execute(RAW_QUERY, ["filled", PAGE]).fetchall()
            body = json.dumps([dict(zip(keys, row, strict=True)) for row in rows], default=str)
            return json.loads(body)

        return read

    if args.each_override:
        overrides_weigh(api, direct(raw), args.requests, together=args.together)
        return
    calls = {"API": api, "raw": direct(raw), "prepared": direct(prepared)}
    ids = {name: [row["id"] for row in call()] for name, call in calls.items()}
    assert len(ids["API"]) == PAGE and ids["API"] == ids["raw"] == ids["prepared"], ids
    timings = {name: [] for name in calls}
    for _ in range(10):  # warm all: caches, prepared plans, the URL resolver
        for call in calls.values():
            call()
    for _ in range(args.requests):  # turn by turn, so all see the same machine
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            timings[name].append((time.perf_counter() - started) * 1000)
    plan = [line for (line,) in raw.execute("EXPLAIN " + RAW_QUERY, ["filled", PAGE])]
    raw.close()
    prepared.close()

    print(f"\n{Order.objects.count():,} orders; GET /api/orders/?status=filled, first page of "
          f"{PAGE}, {args.requests} requests each, DEBUG off, CONN_MAX_AGE "
          f"{db['CONN_MAX_AGE']}")  # fmt: skip
    print(f"{'':10}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}{'API/this p50':>15}")
    p50 = {name: percentile(samples, 0.5) for name, samples in timings.items()}
    for name, samples in timings.items():
        print(f"{name:10}{p50[name]:10.2f}{percentile(samples, 0.99):10.2f}"
              f"{statistics.fmean(samples):10.2f}{p50['API'] / p50[name]:15.2f}")  # fmt: skip
    ratio = p50["API"] / p50["raw"]
    ratio99 = percentile(timings["API"], 0.99) / percentile(timings["raw"], 0.99)
    print(f"ratio API / raw at p50: {ratio:.2f} ({'meets' if ratio <= 3 else 'misses'} the goal "
          f"of 3x); at p99: {ratio99:.2f}")  # fmt: skip
    print("indexes the query uses:", ", ".join(
        line.split(" using ")[1].split(" ")[0] for line in plan if " using " in line
    ))  # fmt: skip


def overrides_weigh(api, raw, requests, *, together=()):
    """The API's p50 over the raw read's with the speed layer on, off, and each override off
    alone, turn by turn in a shuffled order. A switch is followed by one untimed request (the
    timestamptz loader is a connection's: it takes a new one)."""
    from django.conf import settings
    from django.db import connection

    # The site's modules once main() has set Django up (this script picks its database first).
    from tradingsite.fast import OVERRIDES

    configs = {"all on": (True, []), "all off": (True, list(OVERRIDES))}
    configs.update({f"{name} off": (True, [name]) for name in OVERRIDES})
    configs.update({f"{names} off": (True, names.split(",")) for names in together})
    configs["API_FAST=false"] = (False, [])
    timings = {name: [] for name in configs}
    raw_timings = []
    rng = random.Random(7)
    loader = None
    for turn in range(requests + 3):
        order = list(configs)
        rng.shuffle(order)
        for name in order:
            settings.API_FAST, settings.API_FAST_OFF = configs[name]
            uses_loader = settings.API_FAST and "timestamptz" not in settings.API_FAST_OFF
            if uses_loader != loader:
                connection.close()
                loader = uses_loader
            api()
            started = time.perf_counter()
            api()
            took = (time.perf_counter() - started) * 1000
            started = time.perf_counter()
            raw()
            raw_took = (time.perf_counter() - started) * 1000
            if turn >= 3:  # the first turns warm every configuration
                timings[name].append(took)
                raw_timings.append(raw_took)
    settings.API_FAST, settings.API_FAST_OFF = True, []
    raw_p50 = percentile(raw_timings, 0.5)
    on = percentile(timings["all on"], 0.5) / raw_p50
    print(f"\nraw p50 {raw_p50:.2f} ms ({len(raw_timings)} reads); {requests} requests each; "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"{'':22}{'API p50 ms':>11}{'API / raw':>11}{'vs all on':>11}")
    for name, samples in timings.items():
        ratio = percentile(samples, 0.5) / raw_p50
        print(f"{name:22}{percentile(samples, 0.5):11.2f}{ratio:11.2f}{ratio - on:+11.2f}")


if __name__ == "__main__":
    main()
