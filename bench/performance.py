"""How long a strategy's performance figures take: the API's performance page of a strategy
with many closed trades, its admin page and the dashboard showing it, and the snapshot job
over many strategies.

    .venv/bin/python bench/performance.py [--trades 100000] [--strategies 100 --each 10000]
                                          [--keep]

Closed trades (each with its one exit, fees and a decision of its strategy) are written in
bulk, as a year of fills would have left them, and their strategies' days
(``strategy_pnl_days``, which the ledger keeps as it books fills) counted from them.
Database: ``tradingsite_bench_performance`` on PostgreSQL (BENCH_DATABASE_URL moves it).
Goals (issue 16): the page under 300 ms with 100,000 closed trades; the snapshot job for 100
strategies x 10,000 trades under 10 s. It prints the machine's load average beside them.
"""

import argparse
import os
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
    os.environ.get(
        "BENCH_DATABASE_URL", "postgres://root@127.0.0.1:5432/tradingsite_bench_performance"
    ),
)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingsite.settings")
os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("API_THROTTLE_USER", "1000000/min")
os.environ.pop("REDIS_URL", None)
# No IB here: the dashboard's account summary fails at once (port 9 refuses) and says so.
os.environ.update(IBKR_HOST="127.0.0.1", IBKR_PORT="9", IBKR_CONNECT_ATTEMPTS="1")

import django  # noqa: E402

from bench.common import ensure_database  # noqa: E402


def closed_trades(strategy, code, count):
    """``count`` closed trades of ``strategy`` on ``code``, one a day-ish, wins and losses."""
    # The site's modules once main() has set Django up (this script picks its database first).
    from orders.models import Order, Trade, TradeExit
    from strategies.models import Decision

    start = datetime(2024, 1, 2, 15, tzinfo=UTC)
    decisions = Decision.objects.bulk_create(
        Decision(code=code, strategy=strategy, type="buy", current_price=Decimal("100"))
        for _ in range(count)
    )
    orders = Order.objects.bulk_create(
        Order(
            decision=d,
            instrument=code,
            side="BUY",
            quantity=Decimal(10),
            status="filled",
            filled_quantity=Decimal(10),
            price=Decimal(100),
        )  # fmt: skip
        for d in decisions
    )
    trades = []
    for i, order in enumerate(orders):
        at = start + timedelta(minutes=37 * i)
        exit_price = Decimal(100) + Decimal((i * 7919) % 200 - 95) / 100
        trades.append(Trade(
            order=order, instrument=code, entry_price=Decimal(100), entry_quantity=10,
            entry_date=at, exit_price=exit_price, exit_quantity=10,
            exit_date=at + timedelta(minutes=30), realized_pnl=(exit_price - 100) * 10,
            fees=Decimal("2.00"), strategy=strategy,
        ))  # fmt: skip
    trades = Trade.objects.bulk_create(trades, batch_size=5000)
    TradeExit.objects.bulk_create(
        (TradeExit(trade=t, quantity=10, price=t.exit_price, realized_pnl=t.realized_pnl,
                   fees=Decimal("2.00"), exited_at=t.exit_date, strategy=strategy)
         for t in trades),
        batch_size=5000,
    )  # fmt: skip


def queries(work):
    """How many SQL queries ``work`` makes (DEBUG is on: Django keeps them)."""
    from django.db import connection, reset_queries

    reset_queries()
    work()
    return len(connection.queries)


def load():
    return "load average " + " ".join(f"{n:.1f}" for n in os.getloadavg())


def timed(work, repeat):
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        work()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times), max(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=100_000)
    parser.add_argument("--strategies", type=int, default=100)
    parser.add_argument("--each", type=int, default=10_000)
    parser.add_argument("--keep", action="store_true", help="reuse the last run's book")
    args = parser.parse_args()

    ensure_database(os.environ["DATABASE_URL"])
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    # The site's modules once main() has set Django up (this script picks its database first).
    from marketdata.models import Code
    from orders.models import Order, StrategyPnlDay, Trade, TradeExit
    from orders.services import strategy_pnl_days_rebuild
    from performance.models import AgentPerformance
    from performance.services import performance_snapshot, performance_snapshot_all
    from strategies.models import Decision, Strategy
    from tradingsite.testing.api import SecureAPIClient

    code, _ = Code.objects.get_or_create(conid=265598, defaults={"symbol": "AAPL"})
    big = Strategy.objects.filter(name="bench big").first()
    kept = (
        args.keep
        and big is not None
        and Trade.objects.filter(strategy=big).count() == args.trades
        and Strategy.objects.filter(active=True).count() == args.strategies
        and Trade.objects.count() == args.trades + args.strategies * args.each
    )
    if args.keep and not kept:
        print("--keep: the stored book is not this size; writing a fresh one")
    if kept:
        print("kept the book of the last run (--keep)")
    else:
        with connection.cursor() as cursor:  # a fresh book
            for model in (AgentPerformance, StrategyPnlDay, TradeExit, Trade, Order, Decision,
                          Strategy):  # fmt: skip
                cursor.execute(f"TRUNCATE {model._meta.db_table} CASCADE")
        began = time.perf_counter()
        big = Strategy.objects.create(name="bench big", type="two_indicator", active=False)
        closed_trades(big, code, args.trades)
        for n in range(args.strategies):
            strategy = Strategy.objects.create(name=f"bench {n}", type="two_indicator", active=True)
            closed_trades(strategy, code, args.each)
        print(f"wrote {args.trades:,} + {args.strategies} x {args.each:,} closed trades in "
              f"{time.perf_counter() - began:.1f} s")  # fmt: skip
    if not kept or not StrategyPnlDay.objects.exists():
        began = time.perf_counter()
        days = strategy_pnl_days_rebuild()
        print(f"counted {days:,} strategy days in {time.perf_counter() - began:.1f} s")
        with connection.cursor() as cursor:  # the statistics autovacuum keeps after bulk loads
            cursor.execute("ANALYZE")
    print(f"before the timings: {load()}")
    performance_snapshot(strategy=big)
    user = get_user_model().objects.get_or_create(username="bench-reader")[0]
    client = SecureAPIClient(HTTP_HOST="localhost")
    client.force_authenticate(user)
    url = f"/api/strategies/{big.pk}/performance/"
    assert client.get(url).status_code == 200
    median, worst = timed(lambda: client.get(url), 20)
    print(f"GET {url} with {args.trades:,} closed trades: median {median:.0f} ms, "
          f"max {worst:.0f} ms, {queries(lambda: client.get(url))} queries "
          "(goal: under 300 ms)")  # fmt: skip
    median, worst = timed(lambda: performance_snapshot(strategy=big), 3)
    print(f"one snapshot of that strategy: median {median:.0f} ms, max {worst:.0f} ms")
    admin = Client(HTTP_HOST="localhost")
    staff = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )[0]
    admin.force_login(staff)
    for page in (f"/admin/strategies/strategy/{big.pk}/change/", "/admin/dashboard/"):
        assert admin.get(page, secure=True).status_code == 200, page
        median, worst = timed(lambda: admin.get(page, secure=True), 10)  # noqa: B023
        count = queries(lambda: admin.get(page, secure=True))  # noqa: B023
        print(f"GET {page} with {args.trades:,} closed trades: median {median:.0f} ms, "
              f"max {worst:.0f} ms, {count} queries (goal: under 300 ms)")  # fmt: skip

    began = time.perf_counter()
    written = performance_snapshot_all()
    print(f"snapshot job: {written} strategies, "
          f"{Trade.objects.count():,} closed trades in {time.perf_counter() - began:.1f} s "
          f"(goal: under 10 s)")  # fmt: skip
    print(f"after the timings: {load()}")


if __name__ == "__main__":
    main()
