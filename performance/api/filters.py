from django_filters import rest_framework as filters

from performance.models import AgentPerformance
from tradingsite.api.filters import FilterSet, IdFilter, datetime_range

from .serializers import FIGURES


class PerformanceFilter(FilterSet):
    """Sort the strategies side by side by any figure (``-`` first for descending)."""

    id = IdFilter()
    strategy_id = IdFilter(field_name="strategy")
    snapshot_after, snapshot_before = datetime_range("snapshot_time")
    ordering = filters.OrderingFilter(fields=[(name, name) for name in FIGURES])

    class Meta:
        model = AgentPerformance
        fields = []
