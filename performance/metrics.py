"""The formulas of a strategy's performance, in one place. Everything is net of fees (IB's
commissions, ``trades.fees``); no Django here: lists of numbers in, figures out.

- A closed trade's result is its realized P&L minus its fees. Win rate is the share of closed
  trades with a positive result, in percent; a trade at exactly zero is neither a win nor a
  loss but counts in the total.
- Average win is the mean of the positive results; average loss the mean of the negative
  ones (a negative number).
- Profit factor is gross profit / gross loss (the sum of wins over the absolute sum of
  losses); none when there is no loss.
- The equity curve has one point per weekday (Monday to Friday) from the day before the
  strategy's first trade to the day of the snapshot: the strategy's capital (its
  ``account_size``) plus its net realized P&L up to that day's end; the last point adds the
  open trades' unrealized P&L.
- Sharpe ratio: the mean of the curve's daily returns less the daily risk-free rate, over
  their standard deviation (n - 1), times sqrt(252); none with fewer than two returns or no
  variation.
- Max drawdown: the largest fall of the equity curve from a previous peak, in money and in
  percent of that peak.
"""

import itertools
import math
from datetime import date, timedelta
from decimal import Decimal

TRADING_DAYS = 252
ZERO = Decimal(0)


def win_rate(results):
    """Percent of ``results`` (closed trades' net P&L) above zero; None without trades."""
    return win_rate_of(wins=sum(1 for r in results if r > 0), count=len(results))


def win_rate_of(*, wins, count):
    """The same from counts (the snapshot job counts in SQL)."""
    return Decimal(100) * wins / count if count else None


def average_win(results):
    wins = [r for r in results if r > 0]
    return mean_of(sum(wins, ZERO), len(wins))


def average_loss(results):
    losses = [r for r in results if r < 0]
    return mean_of(sum(losses, ZERO), len(losses))


def mean_of(total, count):
    return total / count if count else None


def profit_factor(results):
    return profit_factor_of(
        gross_profit=sum((r for r in results if r > 0), ZERO),
        gross_loss=sum((r for r in results if r < 0), ZERO),
    )


def profit_factor_of(*, gross_profit, gross_loss):
    """``gross_profit`` over the absolute ``gross_loss`` (a sum of negative results)."""
    if gross_loss == 0:
        return None
    return gross_profit / -gross_loss


def weekdays(first: date, last: date):
    """Monday to Friday from ``first`` to ``last``, both included."""
    day, days = first, []
    while day <= last:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def equity_curve(*, capital, realized_by_day, first: date, last: date, unrealized=ZERO):
    """[(day, equity)] on every weekday from the weekday before ``first`` to ``last``:
    ``capital`` plus the net realized P&L of every day up to it (``realized_by_day``:
    {date: amount}; a weekend day's counts on the next weekday, so a curve seen on a weekend
    ends on the Monday after), plus ``unrealized`` on the last day."""
    start = first - timedelta(days=1)
    while start.weekday() >= 5:
        start -= timedelta(days=1)
    while last.weekday() >= 5:  # seen on a weekend: its P&L counts on the Monday after
        last += timedelta(days=1)
    days = weekdays(start, last)
    pending = sorted(realized_by_day.items())
    curve, total, index = [], Decimal(capital), 0
    for day in days:
        while index < len(pending) and pending[index][0] <= day:
            total += pending[index][1]
            index += 1
        curve.append((day, total))
    curve[-1] = (curve[-1][0], curve[-1][1] + unrealized)
    return curve


def daily_returns(equity):
    """The simple returns between consecutive equity values (floats)."""
    values = [float(e) for e in equity]
    return [b / a - 1 for a, b in itertools.pairwise(values) if a]


def sharpe_ratio(returns, *, risk_free=0.0):
    """Annualised Sharpe ratio of daily ``returns`` (``risk_free``: the annual rate)."""
    if len(returns) < 2:
        return None
    daily_rf = risk_free / TRADING_DAYS
    excess = [r - daily_rf for r in returns]
    mean = sum(excess) / len(excess)
    variance = sum((r - mean) ** 2 for r in excess) / (len(excess) - 1)
    if variance <= 0:
        return None
    return mean / math.sqrt(variance) * math.sqrt(TRADING_DAYS)


def max_drawdown(equity):
    """(money, percent): the largest fall of ``equity`` from an earlier peak."""
    peak, worst_money, worst_percent = None, ZERO, ZERO
    for value in equity:
        value = Decimal(value)
        if peak is None or value > peak:
            peak = value
        fall = peak - value
        if fall > worst_money:
            worst_money = fall
        if peak > 0 and fall / peak * 100 > worst_percent:
            worst_percent = fall / peak * 100
    return worst_money, worst_percent


def drawdown_series(equity):
    """Each point's fall below the highest value before it, in percent of that peak (0 at a
    new peak): the drawdown chart; its largest value is ``max_drawdown``'s percent."""
    peak, falls = None, []
    for value in equity:
        value = Decimal(value)
        if peak is None or value > peak:
            peak = value
        falls.append((peak - value) / peak * 100 if peak > 0 else ZERO)
    return falls
