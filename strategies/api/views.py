from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from orders.api.serializers import TradingActionSerializer, TradingStatusSerializer
from orders.selectors import trading_status
from strategies import selectors, services
from strategies.services import trading_kill, trading_resume
from tradingsite.api.pagination import NewestFirstCursorPagination
from tradingsite.api.parsers import JSONParser
from tradingsite.api.schema import BROKER_ERRORS
from tradingsite.api.views import ShapedMixin
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
class StrategyViewSet(ShapedMixin, viewsets.ModelViewSet):
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
class DecisionViewSet(viewsets.ReadOnlyModelViewSet):
    """The agents' buy / sell / hold recommendations with their ratios; read-only."""

    serializer_class = DecisionSerializer
    filterset_class = DecisionFilter
    pagination_class = NewestFirstCursorPagination

    def get_queryset(self):
        return selectors.decisions_list()


class TradingView(APIView):
    """Trading's state: halted by the kill switch or not, and today's loss against the daily
    loss limit (the site's MAX_DAILY_LOSS_PCT)."""

    @extend_schema(summary="Is trading halted? Today's loss against the limit",
                   responses={200: TradingStatusSerializer})  # fmt: skip
    def get(self, request):
        return Response(TradingStatusSerializer(trading_status()).data)


class TradingKillSerializer(serializers.Serializer):
    flatten = serializers.BooleanField(
        default=False, help_text="Also close every open position at market."
    )


class TradingKillView(APIView):
    """The kill switch: every working order cancelled at IB, every strategy paused, every
    position closed when ``flatten``; trading stays halted until resumed. Staff only."""

    permission_classes = [IsAdminUser]
    parser_classes = [JSONParser]  # a JSON body ({"flatten": true}) or none

    @extend_schema(summary="Kill switch", request=TradingKillSerializer,
                   responses={200: TradingActionSerializer, **BROKER_ERRORS})  # fmt: skip
    def post(self, request):
        asked = TradingKillSerializer(data=request.data)
        asked.is_valid(raise_exception=True)
        action = trading_kill(user=request.user, flatten=asked.validated_data["flatten"])
        return Response(TradingActionSerializer(action).data)


class TradingResumeView(APIView):
    """Lift the kill switch (the strategies stay paused until each is resumed). Staff only."""

    permission_classes = [IsAdminUser]

    @extend_schema(summary="Resume trading after the kill switch", request=None,
                   responses={200: TradingActionSerializer})  # fmt: skip
    def post(self, request):
        return Response(TradingActionSerializer(trading_resume(user=request.user)).data)
