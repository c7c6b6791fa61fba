"""Reads of instruments and the market-data cache, shaped for the API."""

from django.core.cache import cache
from django.db.models import F, Q, Window
from django.db.models.functions import RowNumber

from tradingsite.broker import BrokerError, get_broker

from .documents import document_of_columns
from .models import Code, MarketData, OhlcvBar


def codes_list():
    return Code.objects.order_by("symbol", "id")


# IB answers one symbol search a second; the same letters typed again within a minute are
# answered from Django's cache.
SYMBOL_SEARCH_CACHE_SECONDS = 60


def symbol_search(*, term, limit=20, broker=None):
    """The stored codes whose symbol contains ``term`` (or whose conid it is), then the stocks
    IB finds for it (reqMatchingSymbols) that are not stored codes yet: ``(codes, at_ib,
    ib_refusal)``. When IB cannot be asked, ``at_ib`` is empty and ``ib_refusal`` says why."""
    term = term.strip()
    if not term:
        return list(codes_list()[:limit]), [], ""
    stored = Q(symbol__icontains=term)
    if term.isdigit() and len(term) < 12:
        stored |= Q(conid=int(term))
    codes = list(Code.objects.filter(stored).order_by("symbol", "id")[:limit])
    matches, refusal = [], ""
    try:
        broker = broker or get_broker()
        key = f"symbol-search:{broker.host}:{broker.port}:{term.upper()}"
        matches = cache.get(key)
        if matches is None:
            matches = broker.matching_symbols(pattern=term)
            cache.set(key, matches, SYMBOL_SEARCH_CACHE_SECONDS)
    except BrokerError as exc:
        matches, refusal = [], str(exc)
    usd = [m for m in matches if m.currency == "USD"]
    stored_conids = Code.objects.filter(conid__in=[m.conid for m in usd])
    known = set(stored_conids.values_list("conid", flat=True))
    at_ib = [m for m in usd if m.conid not in known][: max(limit - len(codes), 0)]
    return codes, at_ib, refusal


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
