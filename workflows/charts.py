"""PNG charts of price with its indicators, kept with the execution that drew them."""

import re
from pathlib import Path

from django.conf import settings

DEFAULT_LINES = ("sma_20", "sma_50", "sma_200", "supertrend")


def chart_render(*, execution_id, symbol, bar, document, indicators=None):
    """Draw close, moving averages, Bollinger bands and SuperTrend; return the media path."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and workers
    from matplotlib import pyplot as plt

    bars = document["bars"]
    series = document.get("indicators", {})
    x = range(len(bars["close"]))
    wanted = set(indicators or ("sma_20", "sma_50", "sma_200", "bollinger", "supertrend"))
    figure, axes = plt.subplots(figsize=(10, 4.5), dpi=80)
    try:
        axes.plot(x, bars["close"], color="#222", linewidth=1.2, label="close")
        for name in DEFAULT_LINES:
            if name in wanted and name in series:
                axes.plot(x, _nan(series[name]), linewidth=0.9, label=name)
        if "bollinger" in wanted and "bb_upper" in series:
            axes.fill_between(x, _nan(series["bb_lower"]), _nan(series["bb_upper"]),
                              color="#90caf9", alpha=0.25, label="bollinger")  # fmt: skip
        axes.set_title(f"{symbol} {bar}")
        axes.legend(loc="upper left", fontsize=8)
        axes.grid(alpha=0.3)
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


def _nan(values):
    return [float("nan") if v is None else v for v in values]
