from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from strategies import selectors, services
from tradingsite.api.pagination import NewestFirstCursorPagination
from tradingsite.api.views import ShapedMixin, ValuesListMixin
from workflows.api.serializers import (
    BacktestRequestSerializer,
    BacktestStartedSerializer,
    ExecutionStartedSerializer,
    RunSerializer,
)
from workflows.api.views import RUN_DESCRIPTION, backtest_started, execution_started
from workflows.services import strategy_clone, strategy_create, strategy_resume, strategy_update

from .filters import DecisionFilter, StrategyFilter
from .serializers import DecisionSerializer, StrategySerializer


@extend_schema_view(
    list=extend_schema(summary="List strategies"),
    retrieve=extend_schema(summary="One strategy"),
    create=extend_schema(
        summary="Create a strategy",
        description="`param` is checked against the parameters its workflow needs; a missing "
        "or wrong one is a 400 naming it under `errors.param`.",
    ),
    update=extend_schema(summary="Change a strategy"),
    partial_update=extend_schema(summary="Change some fields of a strategy"),
    destroy=extend_schema(summary="Delete a strategy that has no decisions or runs"),
)
class StrategyViewSet(ShapedMixin, ValuesListMixin, viewsets.ModelViewSet):
    serializer_class = StrategySerializer
    filterset_class = StrategyFilter

    def get_queryset(self):
        return selectors.strategies_list()

    def perform_create(self, serializer):
        strategy = strategy_create(**serializer.validated_data)
        serializer.instance = self._shaped(strategy)

    def perform_update(self, serializer):
        strategy = strategy_update(strategy=serializer.instance, **serializer.validated_data)
        serializer.instance = self._shaped(strategy)

    def perform_destroy(self, instance):
        services.strategy_delete(strategy=instance)

    @extend_schema(
        summary="Pause a strategy (active = false): its schedule stops",
        request=None,
        responses=StrategySerializer,
    )
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        strategy = services.strategy_pause(strategy=self.get_object())
        return Response(self.get_serializer(self._shaped(strategy)).data)

    @extend_schema(
        summary="Resume a strategy (active = true): its schedule runs again",
        request=None,
        responses=StrategySerializer,
    )
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        strategy = strategy_resume(strategy=self.get_object())
        return Response(self.get_serializer(self._shaped(strategy)).data)

    @extend_schema(
        summary='Copy the strategy as "NAME (Copy)", paused',
        description="The same workflow, parameters, codes and schedule; it starts paused, so "
        "that two copies never trade side by side unasked.",
        request=None,
        responses={201: StrategySerializer},
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def clone(self, request, pk=None):
        copy = strategy_clone(strategy=self.get_object())
        return Response(
            self.get_serializer(self._shaped(copy)).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        summary="Run the strategy's workflow now",
        description=RUN_DESCRIPTION,
        request=RunSerializer,
        responses={202: ExecutionStartedSerializer},
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def run(self, request, pk=None):
        strategy = self.get_object()
        running = RunSerializer(data=request.data)
        running.is_valid(raise_exception=True)
        return execution_started(strategy=strategy, workflow=strategy.workflow,
                                 **running.validated_data)  # fmt: skip

    @extend_schema(
        summary="Backtest the strategy's own workflow over the bar store (a Celery task)",
        description=(
            "Queues the backtest; follow it at status_url (state, progress), then read its "
            "results at /api/backtests/?run_id=RUN_ID."
        ),
        request=BacktestRequestSerializer,
        responses={202: BacktestStartedSerializer},
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def backtest(self, request, pk=None):
        return backtest_started(strategy=self.get_object(), data=request.data)


@extend_schema_view(
    list=extend_schema(summary="List decisions, newest first"),
    retrieve=extend_schema(summary="One decision"),
)
class DecisionViewSet(ValuesListMixin, viewsets.ReadOnlyModelViewSet):
    """The agents' buy / sell / hold recommendations with their ratios; read-only."""

    serializer_class = DecisionSerializer
    filterset_class = DecisionFilter
    pagination_class = NewestFirstCursorPagination

    def get_queryset(self):
        return selectors.decisions_list()
