"""A strategy's figures from its own trades: a winning week and a losing week, fees
deducted, a manual trade not counted, and the snapshot row as seed 002 keeps it."""

from datetime import datetime
from decimal import Decimal

import empyrical
import pandas as pd
import pytest

from performance import metrics
from performance.api.serializers import FIGURES
from performance.models import AgentPerformance
from performance.services import performance_snapshot, performance_snapshot_all, strategy_figures
from performance.tests.factories import at
from strategies.tests.factories import StrategyFactory

pytestmark = pytest.mark.django_db

D = Decimal


def test_the_figures_of_a_winning_and_a_losing_week(two_weeks):
    figures = strategy_figures(strategy=two_weeks, now=at(20, 21))

    assert figures["realized_pnl"] == D("46")  # 98 - 52
    assert figures["unrealized_pnl"] == D("19")  # 4 x (55 - 50), less the open entry's 1.00
    assert figures["total_pnl"] == D("65")
    assert figures["total_value"] == D("10065")
    assert figures["position_value"] == D("220")  # 4 x 55
    assert figures["cash_balance"] == D("9845")
    assert figures["roi_percent"] == D("0.65")
    assert (figures["num_trades"], figures["num_winning_trades"], figures["num_losing_trades"]) == (
        2, 1, 1,
    )  # fmt: skip
    assert figures["win_rate"] == D("50")
    assert (figures["avg_win"], figures["avg_loss"]) == (D("98"), D("-52"))
    assert figures["profit_factor"] == D("98") / D("52")
    # The curve: 10,000 on Friday 7th, +98 from Wednesday 12th, -52 on Tuesday 18th, and the
    # open PEP's +19 on Thursday 20th.
    equity = dict(figures["equity"])
    assert equity[datetime(2025, 3, 7).date()] == D("10000")
    assert equity[datetime(2025, 3, 12).date()] == D("10098")
    assert equity[datetime(2025, 3, 18).date()] == D("10046")
    assert equity[datetime(2025, 3, 20).date()] == D("10065")
    assert figures["max_drawdown"] == D("52")  # 10,098 -> 10,046
    assert figures["max_drawdown_percent"] == D("52") / D("10098") * 100

    returns = pd.Series(metrics.daily_returns([value for _, value in figures["equity"]]))
    assert figures["sharpe_ratio"] == pytest.approx(empyrical.sharpe_ratio(returns), abs=1e-9)
    assert float(figures["max_drawdown_percent"]) == pytest.approx(
        -100 * empyrical.max_drawdown(returns), abs=1e-9
    )


def test_the_snapshot_row_keeps_the_seeds_places(two_weeks):
    row = performance_snapshot(strategy=two_weeks, now=at(20, 21))

    row.refresh_from_db()
    assert row.snapshot_time == at(20, 21) and row.strategy == two_weeks
    assert (row.realized_pnl, row.unrealized_pnl, row.total_pnl) == (D("46"), D("19"), D("65"))
    assert row.win_rate == D("50.00") and row.profit_factor == D("1.8846")  # 98 / 52
    assert row.max_drawdown_percent == D("0.51")  # 52 / 10,098
    assert row.sharpe_ratio is not None


def test_a_strategy_with_no_trades_has_its_capital_and_no_ratios():
    strategy = StrategyFactory(param={"account_size": "5000"})
    row = performance_snapshot(strategy=strategy, now=at(20, 21))
    assert (row.total_value, row.total_pnl, row.num_trades) == (D("5000"), 0, 0)
    assert row.win_rate is None and row.profit_factor is None and row.sharpe_ratio is None
    assert (row.max_drawdown, row.max_drawdown_percent) == (0, 0)


def test_the_beat_job_snapshots_every_active_strategy_in_the_same_queries_for_any_number(
    two_weeks, django_assert_num_queries
):
    StrategyFactory(active=False)  # no trade, paused: nothing to report
    StrategyFactory(active=True)
    # The strategies, two reads of every strategy's days, two of the open trades (their ids,
    # then the trades), one insert (in a savepoint).
    with django_assert_num_queries(8):
        assert performance_snapshot_all(now=at(20, 21)) == 2
    assert AgentPerformance.objects.count() == 2
    for _ in range(25):  # past the size where one strategy's figures are read on their own
        StrategyFactory(active=True)
    with django_assert_num_queries(8):
        assert performance_snapshot_all(now=at(20, 22)) == 27
    # The same figures as the strategy's own snapshot.
    ours = AgentPerformance.objects.filter(strategy=two_weeks).latest("snapshot_time")
    alone = performance_snapshot(strategy=two_weeks, now=at(20, 22))
    assert [getattr(ours, f) for f in FIGURES] == [getattr(alone, f) for f in FIGURES]
