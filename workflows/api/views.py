from django.urls import reverse
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from tradingsite.api.pagination import NewestIdFirstCursorPagination, TimelineCursorPagination
from tradingsite.api.views import ShapedMixin
from workflows import selectors, services

from .filters import ExecutionFilter, ProbeResultFilter, WorkflowFilter, WorkflowMetricsFilter
from .serializers import (
    AgentMessageSerializer,
    AgentPerformanceSerializer,
    AgentUsageQuerySerializer,
    AgentUsageSerializer,
    BacktestRequestSerializer,
    BacktestTaskSerializer,
    ExecutionSerializer,
    ExecutionStartedSerializer,
    ProbeResultDetailSerializer,
    ProbeResultSerializer,
    WorkflowMetricsSerializer,
    WorkflowRevertSerializer,
    WorkflowRunSerializer,
    WorkflowSerializer,
    WorkflowVersionSerializer,
)

RUN_DESCRIPTION = (
    "Queues one run for a Celery worker and answers at once with 202: follow the execution at "
    "`/api/executions/{execution_id}/` (its `status` and `progress`), then read its "
    "`/conversation/`, and the decisions and orders filtered by `workflow_execution_id` / "
    "`strategy_id`. A strategy whose `param` does not suit the workflow is a 400 naming each "
    "parameter under `errors.param`."
)


def execution_started(*, strategy, workflow, dry_run):
    """Queue a run of ``workflow`` for ``strategy``: 202 with where to follow it."""
    execution = services.execution_start(strategy=strategy, workflow=workflow, dry_run=dry_run)
    return Response(
        ExecutionStartedSerializer(execution).data,
        status=status.HTTP_202_ACCEPTED,
        headers={"Location": reverse("api:execution-detail", kwargs={"pk": execution.pk})},
    )


@extend_schema_view(
    list=extend_schema(summary="List workflows"),
    retrieve=extend_schema(summary="One workflow"),
    create=extend_schema(
        summary="Create a workflow (writes version 1)",
        description="`steps` are checked by the engine; each problem is listed under "
        "`errors.steps`, naming the step and its field.",
    ),
    update=extend_schema(summary="Change a workflow (a change of steps writes a version)"),
    partial_update=extend_schema(summary="Change some fields of a workflow"),
    destroy=extend_schema(summary="Delete a workflow no strategy uses and that never ran"),
)
class WorkflowViewSet(ShapedMixin, viewsets.ModelViewSet):
    """Reusable step lists; every change of steps is saved as a numbered version."""

    serializer_class = WorkflowSerializer
    filterset_class = WorkflowFilter

    def get_queryset(self):
        return selectors.workflows_list()

    def perform_create(self, serializer):
        fields = {k: v for k, v in serializer.validated_data.items() if k != "pause_strategies"}
        workflow = services.workflow_create(**fields, created_by=self.request.user)
        serializer.instance = self._shaped(workflow)

    def perform_update(self, serializer):
        workflow = services.workflow_update(
            workflow=serializer.instance, created_by=self.request.user, **serializer.validated_data
        )
        serializer.instance = self._shaped(workflow)

    def perform_destroy(self, instance):
        services.workflow_delete(workflow=instance)

    @extend_schema(
        summary="The workflow's saved versions, newest first",
        responses=WorkflowVersionSerializer(many=True),
        filters=False,
    )
    @action(detail=True, methods=["get"], filterset_class=None)
    def versions(self, request, pk=None):
        versions = selectors.workflow_versions(workflow=self.get_object())
        page = self.paginate_queryset(versions)
        return self.get_paginated_response(WorkflowVersionSerializer(page, many=True).data)

    @extend_schema(
        summary="Write the next version with an earlier version's steps",
        request=WorkflowRevertSerializer,
        responses=WorkflowSerializer,
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def revert(self, request, pk=None):
        workflow = self.get_object()
        reverting = WorkflowRevertSerializer(data=request.data)
        reverting.is_valid(raise_exception=True)
        workflow = services.workflow_revert(
            workflow=workflow, created_by=request.user, **reverting.validated_data
        )
        return Response(self.get_serializer(self._shaped(workflow)).data)

    @extend_schema(
        summary='Copy the workflow as "NAME (Copy)"',
        request=None,
        responses={201: WorkflowSerializer},
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def clone(self, request, pk=None):
        copy = services.workflow_clone(workflow=self.get_object(), created_by=request.user)
        return Response(
            self.get_serializer(self._shaped(copy)).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        summary="Run this workflow for a strategy (its codes and param)",
        description=RUN_DESCRIPTION,
        request=WorkflowRunSerializer,
        responses={202: ExecutionStartedSerializer},
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def run(self, request, pk=None):
        workflow = self.get_object()
        running = WorkflowRunSerializer(data=request.data)
        running.is_valid(raise_exception=True)
        return execution_started(workflow=workflow, **running.validated_data)


@extend_schema_view(
    list=extend_schema(summary="List executions, newest first"),
    retrieve=extend_schema(summary="One execution, with its progress and results"),
)
class ExecutionViewSet(viewsets.ReadOnlyModelViewSet):
    """Runs of strategies' workflows (Celery tasks); read-only."""

    serializer_class = ExecutionSerializer
    filterset_class = ExecutionFilter
    pagination_class = NewestIdFirstCursorPagination

    def get_queryset(self):
        return selectors.executions_list()

    @extend_schema(
        summary="The agents' messages of an execution, in the order spoken",
        responses=AgentMessageSerializer(many=True),
        filters=False,
    )
    @action(
        detail=True,
        methods=["get"],
        filterset_class=None,
        pagination_class=TimelineCursorPagination,
    )
    def conversation(self, request, pk=None):
        messages = selectors.conversation_of(execution=self.get_object())
        page = self.paginate_queryset(messages)
        return self.get_paginated_response(AgentMessageSerializer(page, many=True).data)

    @extend_schema(
        summary="Cancel a pending or running execution",
        description="A pending execution is cancelled at once and its task revoked; a running "
        "one stops between two steps (its `status` is `cancelled` now, `completed_at` is set "
        "when it stops). A finished execution is a 400 naming `status`.",
        request=None,
        responses=ExecutionSerializer,
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def cancel(self, request, pk=None):
        execution = services.execution_cancel(execution=self.get_object())
        return Response(self.get_serializer(execution).data)


@extend_schema_view(
    list=extend_schema(summary="List workflows' daily metrics, newest day first"),
    retrieve=extend_schema(summary="One workflow's metrics of one day"),
)
class WorkflowMetricsViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = WorkflowMetricsSerializer
    filterset_class = WorkflowMetricsFilter

    def get_queryset(self):
        return selectors.workflow_metrics_list()


class AgentPerformanceView(APIView):
    """Per agent_name: total_messages, average_tokens and decisions_influenced.

    ``decisions_influenced`` counts the distinct decisions recorded by the executions in which
    the agent spoke (``decision.workflow_execution_id``). It credits every agent of a team
    with the team's decisions: it says how many decisions an agent took part in, not whose
    argument won.
    """

    @extend_schema(
        summary="How much each agent spoke and how many decisions it took part in",
        responses=AgentPerformanceSerializer(many=True),
    )
    def get(self, request):
        rows = selectors.agent_performance()
        return Response(AgentPerformanceSerializer(rows, many=True).data)


class AgentUsageView(APIView):
    """The tokens each model used per day (UTC), summed over the agents' messages: what the
    language model costs, per model. ``?since=`` and ``?until=`` (dates) narrow the days."""

    @extend_schema(
        summary="Token usage per model and day",
        parameters=[AgentUsageQuerySerializer],
        responses=AgentUsageSerializer(many=True),
    )
    def get(self, request):
        query = AgentUsageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = selectors.token_usage(**query.validated_data)
        return Response(AgentUsageSerializer(rows, many=True).data)


@extend_schema_view(
    list=extend_schema(summary="List backtest results (one per code of a run), newest first"),
    retrieve=extend_schema(summary="One backtest result with its trades"),
)
class ProbeResultViewSet(viewsets.ReadOnlyModelViewSet):
    """Seed 004's strategy_probe_results: a backtest run's statistics per code."""

    filterset_class = ProbeResultFilter

    def get_serializer_class(self):
        return ProbeResultDetailSerializer if self.action == "retrieve" else ProbeResultSerializer

    def get_queryset(self):
        if self.action == "retrieve":
            return selectors.probe_result_detail()
        return selectors.probe_results_list()


def backtest_started(*, strategy, data):
    """Validate a backtest request and queue it: 202 with the task to follow."""
    request = BacktestRequestSerializer(data=data)
    request.is_valid(raise_exception=True)
    values = request.validated_data
    settings = services.backtest_settings(
        start=values["from"], end=values["to"], commission=values["commission"],
        slippage_bps=values["slippage_bps"], allow_short=values["allow_short"],
        brackets=values["brackets"], replay=values["replay"],
    )  # fmt: skip
    task_id = services.backtest_start(strategy=strategy, settings=settings)
    url = reverse("api:backtest-task", kwargs={"task_id": task_id})
    return Response({"task_id": task_id, "status_url": url}, status=status.HTTP_202_ACCEPTED)


class BacktestTaskView(APIView):
    """Where a queued backtest stands: its Celery state and progress, and its run id once
    done (its results: ``/api/backtests/?run_id=...``)."""

    @extend_schema(summary="A backtest's progress", responses=BacktestTaskSerializer)
    def get(self, request, task_id):
        from celery.result import AsyncResult

        result = AsyncResult(task_id)
        state, info = result.state, result.info
        body = {"task_id": task_id, "state": state, "progress": None, "run_id": None,
                "error": None}  # fmt: skip
        if state == "PROGRESS" and isinstance(info, dict):
            body["progress"] = info
        elif state == "SUCCESS" and isinstance(info, dict):
            body["run_id"] = info.get("run_id")
            body["progress"] = {"percent": 100}
        elif state == "FAILURE":
            body["error"] = str(info)
        return Response(body)
