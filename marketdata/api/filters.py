from django_filters import rest_framework as filters

from marketdata.models import Code, MarketData
from tradingsite.api.filters import FilterSet, IdFilter, datetime_range


class CodeFilter(FilterSet):
    id = IdFilter()
    symbol = filters.CharFilter(lookup_expr="iexact")
    conid = IdFilter()
    exchange = filters.CharFilter(lookup_expr="iexact")
    currency = filters.CharFilter(lookup_expr="iexact")
    sec_type = filters.CharFilter(lookup_expr="iexact")
    name = filters.CharFilter(lookup_expr="icontains")
    is_active = filters.BooleanFilter()
    created_after, created_before = datetime_range("created_at")
    updated_after, updated_before = datetime_range("updated_at")

    class Meta:
        model = Code
        fields = []


class MarketDataFilter(FilterSet):
    id = IdFilter()
    conid = IdFilter()
    period = filters.CharFilter()
    bar = filters.CharFilter()
    created_after, created_before = datetime_range("created_at")

    class Meta:
        model = MarketData
        fields = []
