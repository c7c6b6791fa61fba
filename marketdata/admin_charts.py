"""Price charts for the admin and the dashboard: a cached market-data row's closes with the
indicators drawn over price, decisions marked on the bar they were made on, and the trades'
entries and exits on the bar they were filled on. The browser
draws them with Chart.js (static/vendor/, static/tradingsite/price_chart.js)."""

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime

from django.utils.html import json_script

from tradingsite.money import price_text

# Indicators on the price scale; the others (RSI, MACD, ATR) have scales of their own.
PRICE_LINES = ("sma_20", "sma_50", "sma_200", "bb_upper", "bb_lower", "supertrend")


@dataclass
class PriceChart:
    title: str
    labels: list
    close: list
    lines: dict
    markers: list = field(default_factory=list)

    def as_dict(self):
        return {
            "title": self.title,
            "labels": self.labels,
            "close": self.close,
            "lines": self.lines,
            "markers": self.markers,
        }

    def script(self, element_id):
        return json_script(self.as_dict(), element_id)


def _bar_times(times):
    parsed = []
    for text in times:
        try:
            parsed.append(datetime.fromisoformat(text))
        except (TypeError, ValueError):
            parsed.append(None)
    return parsed


def price_chart_data(row, *, decisions, fills=(), symbol=None, last=None):
    """A PriceChart of ``row`` (a cached MarketData with ``data``), the last ``last`` bars."""
    name = symbol or getattr(row, "symbol", None) or f"conid {row.conid}"
    return document_chart(
        row.data or {}, title=f"{name} - {row.period} / {row.bar}", decisions=decisions,
        fills=fills, last=last,
    )  # fmt: skip


def _label(text):
    """A bar's time on the x axis: its date, and its time of day (UTC) when it has one."""
    return text[:10] if text[11:19] in ("", "00:00:00") else f"{text[:10]} {text[11:16]}"


def document_chart(document, *, title, decisions, fills=(), last=None):
    """A PriceChart of a bars-and-indicators document (the cache's, or one built from the bar
    store), the last ``last`` bars, dated on the x axis.

    A decision is marked on the last bar at or before its time: the bar it was made on; so
    are ``fills``, (time, price, kind, label) of the trades' entries ("entry long", "entry
    short") and exits ("exit"), at their own price. Marks before the first bar shown are
    left out.
    """
    bars = document.get("bars") or {}
    times = list(bars.get("time") or [])
    close = list(bars.get("close") or [])
    start = max(0, len(times) - last) if last else 0
    times, close = times[start:], close[start:]
    indicators = document.get("indicators") or {}
    lines = {name: list(indicators[name])[start:] for name in PRICE_LINES if name in indicators}
    parsed = _bar_times(times)
    marks = [
        (decision.created_at, decision.current_price, decision.type,
         f"{decision.type} #{decision.pk} @ {price_text(decision.current_price)} "
         f"({decision.created_at:%Y-%m-%d %H:%M} UTC)")
        for decision in decisions
    ]  # fmt: skip
    marks += [
        (at, price, kind, f"{label} ({at:%Y-%m-%d %H:%M} UTC)") for at, price, kind, label in fills
    ]
    markers = []
    if parsed and None not in parsed:
        for moment, price, kind, label in marks:
            if parsed[0].tzinfo is None:
                moment = moment.replace(tzinfo=None)
            index = bisect_right(parsed, moment) - 1
            if index >= 0:
                markers.append({"index": index, "price": float(price), "type": kind,
                                "label": label})  # fmt: skip
    return PriceChart(
        title=title,
        labels=[_label(t) for t in times],
        close=close,
        lines=lines,
        markers=markers,
    )
