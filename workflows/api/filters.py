from django_filters import rest_framework as filters

from tradingsite.api.filters import FilterSet, IdFilter, date_range, datetime_range
from workflows.models import (
    ExecutionStatus,
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
