"""What the admin shows of a strategy's performance, on its page and on the dashboard: the
newest snapshot's figures (those ``/api/strategies/{id}/performance/`` returns as
``latest``) and the daily equity curve they were computed from, with its drawdown."""

from decimal import Decimal

from tradingsite.decimals import quantize

from . import metrics, selectors
from .services import strategies_figures

CENTS = Decimal("0.01")


def equity_points(curve):
    """[{day, equity, drawdown_percent}] of an equity curve (metrics.equity_curve): the
    series the API and the charts show."""
    falls = metrics.drawdown_series([value for _, value in curve])
    return [
        {"day": day, "equity": quantize(value, CENTS), "drawdown_percent": quantize(fall, CENTS)}
        for (day, value), fall in zip(curve, falls, strict=True)
    ]


def strategy_panels(strategies, *, now=None):
    """For each strategy: its newest snapshot (or None), and its equity and drawdown chart."""
    strategies = list(strategies)
    latest = selectors.latest_snapshot_of([strategy.pk for strategy in strategies])
    figures = strategies_figures(strategies=strategies, now=now)
    panels = []
    for strategy in strategies:
        points = equity_points(figures[strategy.pk]["equity"])
        panels.append({
            "strategy": strategy,
            "latest": latest.get(strategy.pk),
            "chart_id": f"equity-{strategy.pk}",
            "chart": {
                "title": strategy.name,
                "labels": [point["day"].isoformat() for point in points],
                "equity": [str(point["equity"]) for point in points],
                # Drawn below zero: a fall.
                "drawdown": [str(-point["drawdown_percent"]) for point in points],
            },
        })  # fmt: skip
    return panels
