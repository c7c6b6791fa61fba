"""Reads of instruments and the market-data cache, shaped for the API."""

from django.db.models import F, Window
from django.db.models.functions import RowNumber

from .documents import document_of_columns
from .models import Code, MarketData, OhlcvBar


def codes_list():
    return Code.objects.order_by("symbol", "id")


def market_data_list(*, with_data=True):
    """Cached rows, newest first; a listing leaves out the (large) ``data`` document."""
    rows = MarketData.objects.order_by("-created_at", "-id")
    return rows if with_data else rows.defer("data")


def stored_bars_documents(*, codes, timeframe, last, start=None, end=None):
    """{code id: bars-and-indicators document} of each code's last ``last`` stored bars of
    ``timeframe`` (from ``start`` to ``end`` when given), oldest first, in one query; codes
    without stored bars are left out."""
    span = {}
    if start is not None:
        span["timestamp__gte"] = start
    if end is not None:
        span["timestamp__lte"] = end
    rows = (
        OhlcvBar.objects.filter(ticker__in=codes, timeframe=timeframe, **span)
        .annotate(
            newest=Window(
                RowNumber(), partition_by=[F("ticker_id")], order_by=F("timestamp").desc()
            )
        )
        .filter(newest__lte=last)
        .order_by("ticker_id", "timestamp")
        .values_list("ticker_id", "timestamp", "open", "high", "low", "close", "volume")
    )
    columns = {}
    for ticker_id, *bar in rows:
        columns.setdefault(ticker_id, []).append(bar)
    return {
        ticker_id: document_of_columns(
            times=[bar[0] for bar in bars],
            **{
                name: [bar[i] for bar in bars]
                for i, name in enumerate(("open", "high", "low", "close", "volume"), start=1)
            },
        )  # fmt: skip
        for ticker_id, bars in columns.items()
    }
