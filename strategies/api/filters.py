from django_filters import rest_framework as filters

from strategies.models import Decision, DecisionStatus, DecisionType, Strategy, StrategyType
from tradingsite.api.filters import FilterSet, IdFilter, datetime_range


class StrategyFilter(FilterSet):
    id = IdFilter()
    name = filters.CharFilter(lookup_expr="icontains")
    type = filters.ChoiceFilter(choices=StrategyType.choices)
    workflow_id = IdFilter(field_name="workflow")
    code_id = IdFilter(field_name="codes", label="Strategies that trade this code id")
    active = filters.BooleanFilter()
    created_after, created_before = datetime_range("created_at")
    updated_after, updated_before = datetime_range("updated_at")

    class Meta:
        model = Strategy
        fields = []


class DecisionFilter(FilterSet):
    id = IdFilter()
    code_id = IdFilter(field_name="code")
    strategy_id = IdFilter(field_name="strategy")
    workflow_execution_id = IdFilter(field_name="workflow_execution")
    type = filters.ChoiceFilter(choices=DecisionType.choices)
    status = filters.ChoiceFilter(choices=DecisionStatus.choices)
    llm_model = filters.CharFilter()
    created_after, created_before = datetime_range("created_at")
    price_after, price_before = datetime_range("price_at")

    class Meta:
        model = Decision
        fields = []
