"""PNG charts of price with its indicators, kept with the execution that drew them."""

import re
from pathlib import Path

from django.conf import settings

DEFAULT_LINES = ("sma_20", "sma_50", "sma_200", "supertrend")


def chart_figure(*, symbol, bar, document, indicators=None):
    """Close, moving averages, Bollinger bands and SuperTrend over the bars' dates: a
    matplotlib figure (Agg), which the caller closes."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and workers
    from matplotlib import dates as mdates
    from matplotlib import pyplot as plt

    bars = document["bars"]
    series = document.get("indicators", {})
    x = _bar_times(bars)
    wanted = set(indicators or ("sma_20", "sma_50", "sma_200", "bollinger", "supertrend"))
    figure, axes = plt.subplots(figsize=(10, 4.5), dpi=80)
    axes.plot(x, bars["close"], color="#222", linewidth=1.2, label="close")
    for name in DEFAULT_LINES:
        if name in wanted and name in series:
            axes.plot(x, _nan(series[name]), linewidth=0.9, label=name)
    if "bollinger" in wanted and "bb_upper" in series:
        axes.fill_between(x, _nan(series["bb_lower"]), _nan(series["bb_upper"]),
                          color="#90caf9", alpha=0.25, label="bollinger")  # fmt: skip
    axes.set_title(f"{symbol} {bar}")
    if not isinstance(x, range):  # the bars' dates (UTC) on the x axis
        locator = mdates.AutoDateLocator(maxticks=8)
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    axes.legend(loc="upper left", fontsize=8)
    axes.grid(alpha=0.3)
    return figure


def chart_render(*, execution_id, symbol, bar, document, indicators=None):
    """Draw the chart (``chart_figure``) into the execution's media; return its path."""
    from matplotlib import pyplot as plt

    figure = chart_figure(symbol=symbol, bar=bar, document=document, indicators=indicators)
    try:
        relative = Path("executions") / str(execution_id) / _file_name(symbol, bar)
        target = Path(settings.MEDIA_ROOT) / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(target, bbox_inches="tight")
    finally:
        plt.close(figure)
    return str(relative)


def _file_name(symbol, bar):
    """``AAPL_1day.png``: only the letters and digits of the symbol (other runs become a dash:
    "BRK B" gives BRK-B) and of the bar, so that no symbol can name a path elsewhere."""

    def part(text):
        return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")

    return f"{part(symbol)}_{part(bar).replace('-', '')}.png"


def _bar_times(bars):
    """The bars' times as datetimes, where the document has one per close; else their
    numbers (a document cached before times were kept)."""
    from datetime import datetime

    times = bars.get("time") or []
    if len(times) != len(bars["close"]):
        return range(len(bars["close"]))
    try:
        return [datetime.fromisoformat(t) for t in times]
    except (TypeError, ValueError):
        return range(len(bars["close"]))


def _nan(values):
    return [float("nan") if v is None else v for v in values]
