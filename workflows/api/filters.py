from django_filters import rest_framework as filters

from tradingsite.api.filters import FilterSet, IdFilter, date_range, datetime_range
from workflows.models import (
    ExecutionStatus,
    StrategyProbeResult,
    Workflow,
    WorkflowExecution,
    WorkflowMetrics,
    WorkflowType,
)


class WorkflowFilter(FilterSet):
    id = IdFilter()
    name = filters.CharFilter(lookup_expr="icontains")
    type = filters.ChoiceFilter(choices=WorkflowType.choices)
    created_after, created_before = datetime_range("created_at")
    updated_after, updated_before = datetime_range("updated_at")

    class Meta:
        model = Workflow
        fields = []


class ExecutionFilter(FilterSet):
    id = IdFilter()
    workflow_id = IdFilter(field_name="workflow")
    strategy_id = IdFilter(field_name="strategy")
    status = filters.ChoiceFilter(choices=ExecutionStatus.choices)
    task_id = filters.CharFilter()
    started_after, started_before = datetime_range("started_at")
    completed_after, completed_before = datetime_range("completed_at")
    created_after, created_before = datetime_range("created_at")

    class Meta:
        model = WorkflowExecution
        fields = []


class WorkflowMetricsFilter(FilterSet):
    id = IdFilter()
    workflow_id = IdFilter(field_name="workflow")
    date_after, date_before = date_range("date")

    class Meta:
        model = WorkflowMetrics
        fields = []


class ProbeResultFilter(FilterSet):
    id = IdFilter()
    run_id = filters.CharFilter()
    symbol = filters.CharFilter(lookup_expr="iexact")
    strategy_id = IdFilter(field_name="strategy")
    open_day_after, open_day_before = date_range("open_day")
    period_start_after, period_start_before = datetime_range("period_start")
    period_end_after, period_end_before = datetime_range("period_end")
    created_after, created_before = datetime_range("created_at")
    total_trades = filters.NumberFilter()
    win_rate = filters.NumberFilter()
    profit_factor = filters.NumberFilter()
    total_pnl = filters.NumberFilter()
    max_drawdown = filters.NumberFilter()
    sharpe_ratio = filters.NumberFilter()

    class Meta:
        model = StrategyProbeResult
        fields = []
