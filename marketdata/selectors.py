"""Reads of instruments and the market-data cache, shaped for the API."""

from .models import Code, MarketData


def codes_list():
    return Code.objects.order_by("symbol", "id")


def market_data_list(*, with_data=True):
    """Cached rows, newest first; a listing leaves out the (large) ``data`` document."""
    rows = MarketData.objects.order_by("-created_at", "-id")
    return rows if with_data else rows.defer("data")
