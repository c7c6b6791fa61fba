"""The formulas, on hand-computed series, and against empyrical-reloaded on the same series."""

import math
from datetime import date
from decimal import Decimal

import empyrical
import numpy as np
import pandas as pd
import pytest

from performance import metrics

D = Decimal


def test_a_winning_and_a_losing_trade_and_one_at_zero():
    results = [D("10"), D("-5"), D("20"), D("-15"), D("0")]
    assert metrics.win_rate(results) == D("40")  # 2 of 5
    assert metrics.average_win(results) == D("15")
    assert metrics.average_loss(results) == D("-10")
    assert metrics.profit_factor(results) == D("1.5")  # 30 / 20


def test_a_strategy_with_no_losses_has_no_profit_factor():
    results = [D("10"), D("5")]
    assert metrics.profit_factor(results) is None
    assert metrics.win_rate(results) == D("100")
    assert metrics.average_loss(results) is None


def test_a_strategy_with_no_trades_has_no_ratios():
    assert metrics.win_rate([]) is None
    assert metrics.average_win([]) is None and metrics.profit_factor([]) is None
    assert metrics.sharpe_ratio([]) is None and metrics.sharpe_ratio([0.01]) is None
    assert metrics.max_drawdown([D("1000")]) == (0, 0)


def test_the_equity_curve_counts_each_day_on_its_weekday_and_adds_the_open_trades_last():
    # Monday 2025-03-10 +10, Tuesday -20, Saturday +5 (counted on Monday 2025-03-17).
    curve = metrics.equity_curve(
        capital=D("1000"),
        realized_by_day={date(2025, 3, 10): D("10"), date(2025, 3, 11): D("-20"),
                         date(2025, 3, 15): D("5")},
        first=date(2025, 3, 10), last=date(2025, 3, 17), unrealized=D("3"),
    )  # fmt: skip
    assert curve == [
        (date(2025, 3, 7), D("1000")),  # the Friday before the first trade: the capital
        (date(2025, 3, 10), D("1010")),
        (date(2025, 3, 11), D("990")),
        (date(2025, 3, 12), D("990")),
        (date(2025, 3, 13), D("990")),
        (date(2025, 3, 14), D("990")),
        (date(2025, 3, 17), D("998")),  # + 5 of Saturday + 3 unrealized
    ]


def test_a_curve_seen_on_a_weekend_ends_on_the_monday_after_with_the_weekends_pnl():
    # Saturday 2025-03-15 -40 and Sunday +15, seen on Sunday: they count on Monday 17th.
    curve = metrics.equity_curve(
        capital=D("1000"),
        realized_by_day={date(2025, 3, 14): D("10"), date(2025, 3, 15): D("-40"),
                         date(2025, 3, 16): D("15")},
        first=date(2025, 3, 14), last=date(2025, 3, 16), unrealized=D("2"),
    )  # fmt: skip
    assert curve == [
        (date(2025, 3, 13), D("1000")), (date(2025, 3, 14), D("1010")),
        (date(2025, 3, 17), D("987")),
    ]  # fmt: skip
    # A first trade on the weekend: the Friday before holds the capital.
    curve = metrics.equity_curve(
        capital=D("1000"), realized_by_day={date(2025, 3, 16): D("-30")},
        first=date(2025, 3, 16), last=date(2025, 3, 16),
    )  # fmt: skip
    assert curve == [(date(2025, 3, 14), D("1000")), (date(2025, 3, 17), D("970"))]


def test_max_drawdown_in_money_and_percent_of_the_peak():
    money, percent = metrics.max_drawdown([D(v) for v in (100, 110, 99, 105, 90, 120, 100)])
    assert money == D("20")  # 110 -> 90
    assert percent == D("20") / D("110") * 100


def test_sharpe_by_hand():
    returns = [0.01, -0.02, 0.03]
    mean = 0.02 / 3
    std = math.sqrt(sum((r - mean) ** 2 for r in returns) / 2)
    assert metrics.sharpe_ratio(returns) == pytest.approx(mean / std * math.sqrt(252), abs=1e-12)
    assert metrics.sharpe_ratio([0.01, 0.01]) is None  # no variation


def equity_series(seed, days=300):
    """A strategy's equity: a year of daily P&L around a small drift, from 100,000."""
    pnl = np.random.default_rng(seed).normal(40, 900, days).round(2)
    return [D("100000")] + [D("100000") + D(str(x)) for x in np.cumsum(pnl).round(2)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sharpe_and_drawdown_match_empyrical_on_the_same_series(seed):
    equity = equity_series(seed)
    returns = metrics.daily_returns(equity)
    series = pd.Series(returns)

    assert metrics.sharpe_ratio(returns) == pytest.approx(
        empyrical.sharpe_ratio(series, risk_free=0, period="daily"), abs=1e-9
    )
    daily_rf = 0.03 / 252
    assert metrics.sharpe_ratio(returns, risk_free=0.03) == pytest.approx(
        empyrical.sharpe_ratio(series, risk_free=daily_rf, period="daily"), abs=1e-9
    )
    _, percent = metrics.max_drawdown(equity)
    assert float(percent) == pytest.approx(-100 * empyrical.max_drawdown(series), abs=1e-9)
    # In money, to the cent: the peak-to-trough fall of the same curve.
    values = np.array([float(e) for e in equity])
    falls = np.maximum.accumulate(values) - values
    assert metrics.max_drawdown(equity)[0] == D(str(round(falls.max(), 2)))
