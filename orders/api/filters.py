from django.db.models import F, Q
from django_filters import rest_framework as filters

from orders.models import (
    Order,
    OrderRole,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    TimeInForce,
    Trade,
)
from tradingsite.api.filters import FilterSet, IdFilter, datetime_range


class OrderFilter(FilterSet):
    id = IdFilter()
    status = filters.ChoiceFilter(choices=OrderStatus.choices)
    symbol = filters.CharFilter(field_name="instrument__symbol", lookup_expr="iexact")
    conid = IdFilter(field_name="instrument_id")
    decision_id = IdFilter(field_name="decision")
    strategy_id = IdFilter(field_name="decision__strategy")
    ibkr_order_id = IdFilter()
    side = filters.ChoiceFilter(choices=OrderSide.choices)
    order_type = filters.ChoiceFilter(choices=OrderType.choices)
    tif = filters.ChoiceFilter(choices=TimeInForce.choices)
    parent_order_id = IdFilter(field_name="parent_order")
    role = filters.ChoiceFilter(choices=OrderRole.choices)
    oca_group = filters.CharFilter()
    created_after, created_before = datetime_range("created_at")
    submitted_after, submitted_before = datetime_range("submitted_at")
    filled_after, filled_before = datetime_range("filled_at")
    canceled_after, canceled_before = datetime_range("canceled_at")
    updated_after, updated_before = datetime_range("updated_at")

    class Meta:
        model = Order
        fields = []


class TradeFilter(FilterSet):
    id = IdFilter()
    order_id = IdFilter(field_name="order")
    strategy_id = IdFilter(field_name="strategy")
    manual = filters.BooleanFilter(
        field_name="order__decision", lookup_expr="isnull", label="opened by a manual order"
    )
    status = filters.ChoiceFilter(
        choices=[("open", "open"), ("closed", "closed")], method="filter_status"
    )
    conid = IdFilter(field_name="instrument_id")
    symbol = filters.CharFilter(field_name="instrument__symbol", lookup_expr="iexact")
    entry_after, entry_before = datetime_range("entry_date")
    exit_after, exit_before = datetime_range("exit_date")
    created_after, created_before = datetime_range("created_at")
    updated_after, updated_before = datetime_range("updated_at")

    class Meta:
        model = Trade
        fields = []

    def filter_status(self, queryset, name, value):
        closed = Q(exit_quantity=F("entry_quantity"))
        return queryset.filter(closed) if value == "closed" else queryset.exclude(closed)


class PositionFilter(FilterSet):
    """Open positions unless ``state`` says ``closed`` or ``all``."""

    STATES = [("open", "open"), ("closed", "closed"), ("all", "all")]

    id = IdFilter()
    conid = IdFilter(field_name="instrument_id")
    symbol = filters.CharFilter(field_name="instrument__symbol", lookup_expr="iexact")
    state = filters.ChoiceFilter(
        choices=STATES, method="filter_state", label="open (default), closed or all"
    )
    closed_after, closed_before = datetime_range("closed_at")
    updated_after, updated_before = datetime_range("updated_at")

    class Meta:
        model = Position
        fields = []

    def __init__(self, data=None, *args, **kwargs):
        if data is not None and not data.get("state"):
            data = data.copy()
            data["state"] = "open"
        super().__init__(data, *args, **kwargs)

    def filter_state(self, queryset, name, value):
        if value == "all":
            return queryset
        return queryset.filter(closed_at__isnull=value == "open")
