"""How long a backtest takes: a rules-only workflow over 10 years of daily bars for 20
symbols, and the offline agents' workflow per bar.

    .venv/bin/python bench/backtest.py [--symbols 20] [--years 10] [--agent-bars 60]

Daily bars (seeded walks) are stored once in ``tradingsite_bench_backtest`` on PostgreSQL
(BENCH_DATABASE_URL moves it). Then: (1) the SMA-cross workflow (fetch_data 1 Y of daily
bars with its indicators, sma_cross, decide, validate_risk, place_order MKT) over every
bar of every symbol, results stored; (2) the two_indicator template (daily and weekly bars,
the offline AutoGen team, decide, risk gate, limit order) over ``--agent-bars`` bars of one
symbol. Goal (issue 17): (1) under 30 s.
"""

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault(
    "DATABASE_URL",
    os.environ.get(
        "BENCH_DATABASE_URL", "postgres://root@127.0.0.1:5432/tradingsite_bench_backtest"
    ),
)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingsite.settings")
os.environ.setdefault("DEBUG", "true")
os.environ.pop("REDIS_URL", None)
os.environ.pop("LLM_BASE_URL", None)  # the offline model

import django  # noqa: E402

from bench.common import ensure_database  # noqa: E402

FIRST = datetime(2015, 1, 5, tzinfo=UTC)


def weekdays(count):
    days, day = [], FIRST
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def store_bars(code, sessions, seed):
    import numpy as np

    # The site's modules once main() has set Django up (this script picks its database first).
    from marketdata.models import OhlcvBar

    if OhlcvBar.objects.filter(ticker=code).count() == sessions:
        return
    OhlcvBar.objects.filter(ticker=code).delete()
    rng = np.random.default_rng(seed)
    drift = np.repeat(rng.choice([-0.002, 0.002], sessions // 30 + 1), 30)[:sessions]
    close = 100 * np.exp(np.cumsum(drift + rng.normal(0, 0.012, sessions)))
    open_ = np.concatenate([[100.0], close[:-1]])
    high = np.maximum(open_, close) * 1.004
    low = np.minimum(open_, close) * 0.996
    OhlcvBar.objects.bulk_create(
        (
            OhlcvBar(
                ticker=code,
                timeframe="1Day",
                timestamp=day,
                open=open_[i],
                high=high[i],
                low=low[i],
                close=close[i],
                volume=1000,
                source="csv_import",
            )  # fmt: skip
            for i, day in enumerate(weekdays(sessions))
        ),
        batch_size=5000,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--agent-bars", type=int, default=60)
    parser.add_argument("--no-brackets", action="store_true", help="entries alone")
    options = parser.parse_args()
    ensure_database(os.environ["DATABASE_URL"])
    django.setup()
    from django.core.management import call_command

    # The site's modules once main() has set Django up (this script picks its database first).
    from marketdata.models import Code
    from strategies.models import Strategy
    from workflows.backtest import BacktestSettings, backtest_run
    from workflows.models import Workflow
    from workflows.services import workflow_create
    from workflows.templates import TEMPLATES

    call_command("migrate", verbosity=0)
    sessions = 252 * options.years
    codes = []
    for number in range(options.symbols):
        code, _ = Code.objects.get_or_create(conid=990000 + number,
                                             defaults={"symbol": f"BT{number}"})  # fmt: skip
        store_bars(code, sessions, seed=number)
        codes.append(code)
    days = weekdays(sessions)

    steps = [
        {"type": "fetch_data", "config": {"period": "1 Y", "bar": "1 day"}},
        {"type": "sma_cross", "config": {"fast": 10, "slow": 30}},
        {"type": "decide", "config": {}},
        {"type": "validate_risk", "config": {}},
        {"type": "place_order", "config": {"order_type": "MKT", "tif": "DAY"}},
    ]
    workflow = Workflow.objects.filter(name="bench SMA cross").first() or workflow_create(
        name="bench SMA cross", steps=steps, default_params={"account_size": "1000000"}
    )
    rules, _ = Strategy.objects.get_or_create(
        name="bench SMA cross", defaults={"type": "custom", "workflow": workflow}
    )
    rules.codes.set(codes)
    started = time.perf_counter()
    outcome = backtest_run(strategy=rules, settings=BacktestSettings(
        start=days[0], end=days[-1], brackets=not options.no_brackets))  # fmt: skip
    took = time.perf_counter() - started
    print(f"rules-only (SMA cross), {options.symbols} symbols x {sessions} daily bars "
          f"({options.years} years): {took:.1f} s, {took / outcome.bars * 1e6:.0f} us per bar "
          f"per symbol, {len(outcome.trades)} trades, "
          f"{'entries alone' if options.no_brackets else 'brackets worked'}")  # fmt: skip

    template = TEMPLATES["two_indicator"]
    agents_workflow = Workflow.objects.filter(type="two_indicator").first() or workflow_create(
        name=template["name"], type="two_indicator", steps=template["steps"],
        default_params=template["default_params"],
    )  # fmt: skip
    agents, _ = Strategy.objects.get_or_create(
        name="bench two indicator", defaults={"type": "two_indicator", "workflow": agents_workflow}
    )
    agents.codes.set(codes[:1])
    started = time.perf_counter()
    outcome = backtest_run(
        strategy=agents, store=False,
        settings=BacktestSettings(start=days[-options.agent_bars], end=days[-1]),
    )  # fmt: skip
    took = time.perf_counter() - started
    print(f"offline agents (two_indicator: daily + weekly, AutoGen team), 1 symbol x "
          f"{options.agent_bars} bars: {took:.1f} s, {took / outcome.bars * 1000:.0f} ms per bar, "
          f"{outcome.messages} agent messages, {len(outcome.trades)} trades")  # fmt: skip


if __name__ == "__main__":
    main()
