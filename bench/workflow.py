"""One workflow run over many codes: total time, queries per code, the engine's own overhead.

    .venv/bin/python bench/workflow.py [--codes 100] [--charts]

Runs in this process against a loopback IB gateway (on a thread, over a real socket), a warm
market-data cache and the offline model, with `wait` 0, on the PostgreSQL database
`tradingsite_bench_workflow` (created and migrated here; BENCH_DATABASE_URL moves it).

The engine's overhead per code is the run's time minus the time spent in the broker, in the
agent team (the model and AutoGen) and, with --charts, in recording charts (a run draws none:
each is drawn when first viewed): what is left is the engine itself (steps, parameters, risk
gate, progress and log writes, decisions, orders).
Queries are counted for a run of 10 codes and of N codes; a constant number per code means
the two agree. Goal: at most 25 ms of overhead per code, and a constant number of queries.
"""

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault(
    "DATABASE_URL",
    os.environ.get(
        "BENCH_DATABASE_URL", "postgres://root@127.0.0.1:5432/tradingsite_bench_workflow"
    ),
)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingsite.settings")
os.environ.setdefault("DEBUG", "true")
os.environ.pop("REDIS_URL", None)  # in-process run: the database run lock, no Celery

import django  # noqa: E402

from bench.common import ensure_database  # noqa: E402


class Clock:
    """Adds up the time spent inside wrapped functions, by label."""

    def __init__(self):
        self.seconds = defaultdict(float)
        self.calls = defaultdict(int)

    def wrap(self, owner, name, label):
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - started
                self.calls[label] += 1

        setattr(owner, name, timed)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codes", type=int, default=100)
    parser.add_argument("--charts", action="store_true", help="keep the generate_chart step")
    args = parser.parse_args()

    ensure_database(os.environ["DATABASE_URL"])
    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)

    from ibgateway import STOCKS, LoopbackGateway

    # The site's modules once main() has set Django up (this script picks its database first).
    from marketdata.models import MarketData
    from marketdata.services import code_resolve, market_data_get
    from orders.models import Order
    from strategies.models import Decision, Strategy
    from tradingsite.broker import get_broker, reset_broker
    from tradingsite.broker.ib import IBBroker
    from workflows import charts
    from workflows.agents import team
    from workflows.engine.runner import execution_run
    from workflows.models import AgentConversation, Workflow, WorkflowExecution
    from workflows.services import (
        execution_prepare,
        strategy_create,
        workflow_create,
    )
    from workflows.templates import TEMPLATES

    gateway = LoopbackGateway(host="127.0.0.1", port=0, seed=3)
    settings.IBKR_HOST, settings.IBKR_PORT, settings.IBKR_CLIENT_ID = (
        "127.0.0.1",
        gateway.start(),
        90,
    )
    reset_broker()
    settings.MEDIA_ROOT = str(ROOT / "var" / "bench-media")

    # A clean slate: the run's own rows from an earlier bench go.
    AgentConversation.objects.all().delete()
    Order.objects.all().delete()
    Decision.objects.all().delete()
    WorkflowExecution.objects.all().delete()
    Strategy.objects.all().delete()

    symbols = list(STOCKS)[: args.codes]
    symbols += [f"BX{i:03d}" for i in range(args.codes - len(symbols))]
    template = TEMPLATES["two_indicator"]
    steps = [
        {**s, "config": {"seconds": 0}} if s["type"] == "wait" else s
        for s in template["steps"]
        if args.charts or s["type"] != "generate_chart"
    ]
    Workflow.objects.filter(name__startswith="bench ").delete()
    workflow = workflow_create(
        name="bench two_indicator", type="two_indicator", steps=steps,
        default_params=template["default_params"],
    )  # fmt: skip

    class NoPacing:  # the loopback gateway has no pacing limits; the timed run reads the cache
        def acquire(self, *args, **kwargs):
            pass

    get_broker().pacing = NoPacing()
    started = time.perf_counter()
    codes = [code_resolve(symbol=s) for s in symbols]
    fresh = MarketData.objects.filter(conid__in=[c.conid for c in codes])
    fresh.delete()
    for code in codes:  # warm the cache: the run reads it without asking IB
        for n in (1, 2):
            market_data_get(code=code, period=template["default_params"][f"period_{n}"],
                            bar=template["default_params"][f"bar_{n}"])  # fmt: skip
    print(f"setup: {len(codes)} codes resolved and their bars cached in "
          f"{time.perf_counter() - started:.1f}s")  # fmt: skip

    clock = Clock()
    for name in ("resolve", "historical_bars", "place_order", "cancel_order", "wait",
                 "executions", "order_statuses", "connect"):  # fmt: skip
        clock.wrap(IBBroker, name, "broker")
    clock.wrap(team, "decide", "agents")
    clock.wrap(charts, "chart_record", "charts")
    get_broker()  # connected before the clock starts

    def one_run(n, label):
        strategy = strategy_create(name=f"bench {label}", type="two_indicator",
                                   workflow=workflow, codes=codes[:n])  # fmt: skip
        execution = execution_prepare(strategy=strategy)
        clock.seconds.clear()
        queries = []
        connection.force_debug_cursor = True
        connection.queries_log.clear()
        t0 = time.perf_counter()
        with connection.execute_wrapper(
            lambda execute, sql, *a: queries.append(sql) or execute(sql, *a)
        ):
            execution = execution_run(execution_id=execution.pk)
        total = time.perf_counter() - t0
        connection.force_debug_cursor = False
        return execution, total, len(queries), dict(clock.seconds)

    small, _, small_queries, _ = one_run(10, "10 codes")
    assert small.status == "completed", small.error_message
    execution, total, queries, spent = one_run(len(codes), f"{len(codes)} codes")
    assert execution.status == "completed", execution.error_message
    results = execution.results
    n = len(codes)
    outside = sum(spent.values())
    overhead = total - outside
    print(f"run: {n} codes in {total:.2f}s ({execution.status}): "
          f"{results['decisions_made']} decisions, {results['orders_placed']} orders")  # fmt: skip
    for label in ("broker", "agents", "charts"):
        if label in spent:
            print(f"  {label:>7}: {spent[label]:.2f}s ({1000 * spent[label] / n:.1f} ms/code)")
    print(f"  engine overhead: {overhead:.2f}s = {1000 * overhead / n:.1f} ms/code (goal <= 25)")
    per_code = (queries - small_queries) / (n - 10)
    print(
        f"queries: {small_queries} for 10 codes, {queries} for {n} codes: "
        f"{per_code:.1f} per code marginal, {small_queries / 10:.1f} per code at 10 "
        f"({'constant' if abs(per_code - small_queries / 10) <= 1 else 'NOT constant'})"
    )
    reset_broker()
    gateway.stop()


if __name__ == "__main__":
    main()
