"""How fast the admin opens the decisions and orders change lists with a million rows each.

Run by hand (not a test): ``.venv/bin/python bench/admin.py [--rows N] [--reload] [--repeat R]``.

Loads ``--rows`` decisions and as many orders (one per decision, as the product makes them) by
COPY into a database of its own, ``tradingsite_bench_admin`` on the PostgreSQL server of
``--server`` (default: this user on 127.0.0.1:5432), migrated like the site's. The rows stay
for the next run; ``--reload`` loads them again. Each page is opened through Django's test
Client logged in as a superuser, once to warm up and then ``--repeat`` times; the median and
best times and the number of queries are printed.
"""

import argparse
import getpass
import os
import statistics
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import ensure_database  # noqa: E402

DATABASE = "tradingsite_bench_admin"
CODES = 50
STRATEGIES = 10
IB_ORDER_IDS = 10_000  # order i has IB order id IB_ORDER_IDS + i
SPAN = timedelta(days=730)  # decisions spread over two years, newest now


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--reload", action="store_true")
    parser.add_argument("--server", default=f"postgres://{getpass.getuser()}@127.0.0.1:5432")
    return parser.parse_args()


def database_ready(server):
    ensure_database(f"{server}/{DATABASE}")
    # Django reads its database from the environment, as the site does.
    os.environ["DATABASE_URL"] = f"{server}/{DATABASE}"
    os.environ.setdefault("TESTING", "true")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingsite.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def load(rows):
    """Codes and strategies by the ORM; decisions and orders by COPY, then VACUUM ANALYZE."""
    from django.db import connection
    from django.utils import timezone

    # The site's modules once main() has set Django up (this script picks its database first).
    from marketdata.models import Code
    from strategies.models import Strategy

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE orders, trades, decision, strategy_codes, strategy, code CASCADE")
    codes = Code.objects.bulk_create(
        Code(symbol=f"SYM{i}", conid=5_000_000 + i) for i in range(CODES)
    )
    strategies = Strategy.objects.bulk_create(
        Strategy(name=f"Bench strategy {i}", type="two_indicator", active=False)
        for i in range(STRATEGIES)
    )
    now = timezone.now()
    step = SPAN / rows
    with connection.cursor() as cursor:
        with cursor.copy(
            "COPY decision (id, code_id, strategy_id, type, current_price, target_price, "
            "stop_loss, profit_margin, r_coefficient, analysis_text, created_at) FROM STDIN"
        ) as copy:
            for i in range(1, rows + 1):
                price = Decimal(100 + i % 50)
                copy.write_row((
                    i, codes[i % CODES].pk, strategies[i % STRATEGIES].pk,
                    ("buy", "sell", "hold")[i % 3], price, price + 10, price - 5,
                    Decimal("0.1"), Decimal("-2"), "", now - SPAN + step * i,
                ))  # fmt: skip
        with cursor.copy(
            "COPY orders (id, decision_id, ibkr_order_id, conid, side, quantity, price, "
            "order_type, tif, status, filled_quantity, created_at, updated_at) FROM STDIN"
        ) as copy:
            for i in range(1, rows + 1):
                at = now - SPAN + step * i
                copy.write_row((
                    i, i, IB_ORDER_IDS + i, codes[i % CODES].conid, ("BUY", "SELL")[i % 2],
                    Decimal(10), Decimal(100 + i % 50), "LMT", "DAY",
                    ("submitted", "filled", "cancelled")[i % 3], Decimal(0), at, at,
                ))  # fmt: skip
        for table in ("decision", "orders"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM "
                f"{table}))"
            )
            # What autovacuum does soon after a load: statistics, and the visibility map that
            # lets a count read the index alone.
            cursor.execute(f"VACUUM ANALYZE {table}")
    print(f"loaded {rows:,} decisions and {rows:,} orders in {time.perf_counter() - started:.1f} s")


def pages(latest):
    return [
        ("decisions", "/admin/strategies/decision/"),
        ("decisions, page 20", "/admin/strategies/decision/?p=20"),
        (
            "decisions of one strategy",
            "/admin/strategies/decision/?strategy__id__exact=" + str(latest["strategy"]),
        ),  # fmt: skip
        ("decisions, search SYM7", "/admin/strategies/decision/?q=SYM7"),
        (
            "decisions, one month",
            f"/admin/strategies/decision/?created_at__year="
            f"{latest['at'].year}&created_at__month={latest['at'].month}",
        ),  # fmt: skip
        ("orders", "/admin/orders/order/"),
        ("orders, filled", "/admin/orders/order/?status__exact=filled"),
        ("orders, search SYM7", "/admin/orders/order/?q=SYM7"),
        ("orders, IB order id", f"/admin/orders/order/?q={latest['middle_ib_order_id']}"),
    ]


def measure(repeat):
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment

    # The site's modules once main() has set Django up (this script picks its database first).
    from strategies.models import Decision

    setup_test_environment()
    user = get_user_model().objects.filter(username="bench").first()
    if user is None:
        user = get_user_model().objects.create_superuser("bench", "", "bench-password")
    client = Client()
    client.force_login(user)
    newest = Decision.objects.order_by("-created_at").first()
    latest = {
        "strategy": newest.strategy_id,
        "at": newest.created_at,
        "middle_ib_order_id": IB_ORDER_IDS + max(1, newest.pk // 2),  # the load's numbering
    }
    print(f"{'page':<28} {'median':>9} {'best':>9} {'queries':>8}")
    for name, url in pages(latest):
        response = client.get(url, secure=True)  # warm-up
        assert response.status_code == 200, (url, response.status_code)
        times = []
        for _ in range(repeat):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                response = client.get(url, secure=True)
                times.append(time.perf_counter() - started)
        assert b'id="result_list"' in response.content, url
        print(f"{name:<28} {statistics.median(times) * 1000:>7.0f}ms "
              f"{min(times) * 1000:>7.0f}ms {len(queries):>8}")  # fmt: skip


def main():
    args = arguments()
    database_ready(args.server)
    # The site's modules once main() has set Django up (this script picks its database first).
    from strategies.models import Decision

    if args.reload or Decision.objects.count() != args.rows:
        load(args.rows)
    else:
        print(f"{args.rows:,} decisions and orders already loaded in {DATABASE}")
    measure(args.repeat)


if __name__ == "__main__":
    main()
