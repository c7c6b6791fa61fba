"""PNG charts of price with its indicators, kept with the execution whose run saw the bars.

A run records its charts (``chart_record``: which bars, from which cache row) and draws none:
the agents read the bars and indicators, not the image, and most runs' charts are never
opened. The image is drawn when first asked for (``chart_file``, the execution page's image
URL) from the cached document the run read, or, once the cache has been purged, from the bar
store's same bars; it is kept beside the execution's other files and served from there after.
"""

import math
import os
import re
import uuid
from datetime import datetime
from pathlib import Path

from django.conf import settings

from marketdata.bar_store import timeframe_of
from marketdata.models import MarketData
from marketdata.selectors import stored_bars_documents

DEFAULT_LINES = ("sma_20", "sma_50", "sma_200", "supertrend")
COLOURS = {"close": (34, 34, 34), "sma_20": (31, 119, 180), "sma_50": (255, 127, 14),
           "sma_200": (44, 160, 44), "supertrend": (214, 39, 40)}  # fmt: skip
BAND = (215, 233, 251)  # the Bollinger band's fill
GRID = (228, 228, 228)
WIDTH, HEIGHT = 800, 360
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 30, 28
DATE_LABELS = 6


def chart_record(*, execution_id, symbol, bar, code_id, period, market_data_id, document,
                 indicators=None):  # fmt: skip
    """What ``results["charts"]`` keeps of one chart of a run, to draw it when asked: its
    media path, the code and bars (the cache row the run read, and the bar store's last bar
    and count, should that row be purged), and the indicators drawn."""
    times = document["bars"].get("time") or []
    return {
        "symbol": symbol, "bar": bar,
        "path": str(Path("executions") / str(execution_id) / _file_name(symbol, bar)),
        "code_id": code_id, "period": period, "market_data_id": market_data_id,
        "end": times[-1] if times else None, "bars": len(document["bars"]["close"]),
        "indicators": list(indicators) if indicators else None,
    }  # fmt: skip


def chart_file(*, execution, name):
    """The PNG ``name`` of ``execution``'s charts, drawn now if it has not been yet; None for
    a name the run has no chart of, or whose bars are no longer stored."""
    chart = next(
        (c for c in (execution.results or {}).get("charts") or []
         if isinstance(c, dict) and c.get("path") and Path(c["path"]).name == name),
        None,
    )  # fmt: skip
    if chart is None:
        return None
    target = Path(settings.MEDIA_ROOT) / "executions" / str(execution.pk) / name
    if target.is_file():
        return target
    document = _document_of(chart)
    if document is None:
        return None
    chart_render(execution_id=execution.pk, symbol=chart["symbol"], bar=chart["bar"],
                 document=document, indicators=chart.get("indicators"))  # fmt: skip
    return target


def _document_of(chart):
    """The bars and indicators a run charted: the cache row it read, or, that row purged,
    the bar store's same bars (up to the run's last, as many)."""
    if chart.get("code_id") is None:  # recorded before charts were drawn on request
        return None
    if chart.get("market_data_id") is not None:
        cached = MarketData.objects.filter(pk=chart["market_data_id"]).values_list("data")
        for (document,) in cached:
            return document
    timeframe = timeframe_of(chart["bar"])
    if timeframe is None or not chart.get("end") or not chart.get("bars"):
        return None
    documents = stored_bars_documents(
        codes=[chart["code_id"]], timeframe=timeframe, last=chart["bars"],
        end=datetime.fromisoformat(chart["end"]),
    )  # fmt: skip
    return documents.get(chart["code_id"])


def chart_render(*, execution_id, symbol, bar, document, indicators=None):
    """Draw close, moving averages, Bollinger bands and SuperTrend; return the media path.

    Drawn with Pillow, straight onto the pixels (about 5 ms a chart; matplotlib took about
    160 ms, 87 % of a run's CPU): lines, the band's fill, a price grid with its labels, the
    title and a legend."""
    from PIL import Image, ImageDraw, ImageFont

    bars = document["bars"]
    series = document.get("indicators", {})
    wanted = set(indicators or ("sma_20", "sma_50", "sma_200", "bollinger", "supertrend"))
    lines = {"close": bars["close"]}
    lines.update(
        {name: series[name] for name in DEFAULT_LINES if name in wanted and name in series}
    )
    band = None
    if "bollinger" in wanted and "bb_upper" in series and "bb_lower" in series:
        band = (series["bb_upper"], series["bb_lower"])
    values = [v for line in (*lines.values(), *(band or ())) for v in line if _finite(v)]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if high - low < 1e-9:
        low, high = low - 1, high + 1
    pad = (high - low) * 0.04
    low, high = low - pad, high + pad
    count = max(len(bars["close"]), 2)
    width, height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(i):
        return LEFT + i * width / (count - 1)

    def y(v):
        return TOP + (high - v) * height / (high - low)

    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    for step in range(6):
        price = low + (high - low) * step / 5
        level = y(price)
        draw.line([(LEFT, level), (WIDTH - RIGHT, level)], fill=GRID)
        draw.text((4, level - 6), f"{price:,.2f}", fill=(90, 90, 90), font=font)
    if band is not None:
        upper, lower = band
        for run in _runs(upper, lower):
            outline = [(x(i), y(upper[i])) for i in run] + [(x(i), y(lower[i])) for i in run[::-1]]
            if len(outline) >= 3:
                draw.polygon(outline, fill=BAND)
    for name, line in lines.items():
        for run in _runs(line):
            points = [(x(i), y(line[i])) for i in run]
            if len(points) > 1:
                draw.line(points, fill=COLOURS[name], width=2 if name == "close" else 1)
    draw.rectangle([LEFT, TOP, WIDTH - RIGHT, HEIGHT - BOTTOM], outline=(160, 160, 160))
    for i, label in date_labels(bars.get("time"), count=len(bars["close"])):
        draw.line([(x(i), HEIGHT - BOTTOM), (x(i), HEIGHT - BOTTOM + 4)], fill=(160, 160, 160))
        half = draw.textlength(label, font=font) / 2
        left = min(max(x(i) - half, 0), WIDTH - 2 * half - 1)
        draw.text((left, HEIGHT - BOTTOM + 7), label, fill=(90, 90, 90), font=font)
    draw.text((LEFT, 8), f"{symbol} {bar}", fill=(0, 0, 0), font=font)
    legend = LEFT + 8 + draw.textlength(f"{symbol} {bar}", font=font) + 24
    for name in [*lines, *(["bollinger"] if band else [])]:
        colour = COLOURS.get(name, BAND)
        draw.rectangle([legend, 12, legend + 10, 18], fill=colour)
        draw.text((legend + 14, 8), name, fill=(60, 60, 60), font=font)
        legend += 14 + draw.textlength(name, font=font) + 14
    relative = Path("executions") / str(execution_id) / _file_name(symbol, bar)
    target = Path(settings.MEDIA_ROOT) / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written aside, then renamed: two requests drawing the same chart at once never serve
    # a half-written file.
    drawing = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
    image.save(drawing, format="PNG", compress_level=1)
    os.replace(drawing, target)
    return str(relative)


def date_labels(times, *, count, labels=DATE_LABELS):
    """[(bar index, label)] for the x axis: the bars' dates (UTC), "2025-03-14", with the time
    when the bars are shorter than a day, at ``labels`` evenly spaced bars. None without a
    time per bar (a document cached before times were kept)."""
    if not times or len(times) != count:
        return []
    try:
        moments = [datetime.fromisoformat(t) for t in times]
    except (TypeError, ValueError):
        return []
    intraday = count > 1 and (moments[-1] - moments[0]).total_seconds() / (count - 1) < 86_400
    shape = "%Y-%m-%d %H:%M" if intraday else "%Y-%m-%d"
    picked = sorted({round(k * (count - 1) / max(labels - 1, 1)) for k in range(labels)})
    return [(i, moments[i].strftime(shape)) for i in picked]


def _finite(value):
    return value is not None and math.isfinite(value)


def _runs(*lines):
    """Index runs where every line has a number (gaps, e.g. before a moving average has
    enough bars, split the drawing)."""
    run = []
    for i in range(min(len(line) for line in lines)):
        if all(_finite(line[i]) for line in lines):
            run.append(i)
        elif run:
            yield run
            run = []
    if run:
        yield run


def _file_name(symbol, bar):
    """``AAPL_1day.png``: only the letters and digits of the symbol (other runs become a dash:
    "BRK B" gives BRK-B) and of the bar, so that no symbol can name a path elsewhere."""

    def part(text):
        return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")

    return f"{part(symbol)}_{part(bar).replace('-', '')}.png"
