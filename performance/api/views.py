from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from performance import selectors, services
from performance.panels import equity_points
from strategies.models import Strategy

from .filters import PerformanceFilter
from .serializers import (
    PerformanceSerializer,
    PeriodPnlSerializer,
    StrategyPerformanceSerializer,
)


@extend_schema_view(
    list=extend_schema(summary="Every strategy's newest figures, side by side (?ordering=)"),
    retrieve=extend_schema(summary="One snapshot of a strategy's figures"),
)
class PerformanceViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = PerformanceSerializer
    filterset_class = PerformanceFilter

    def get_queryset(self):
        if self.action == "list":
            return selectors.latest_snapshots().order_by("strategy_id")
        return selectors.snapshots().select_related("strategy")


class StrategyPerformanceView(APIView):
    """A strategy's newest figures, their series and its performance per symbol; a POST
    takes a snapshot now (staff)."""

    @extend_schema(summary="A strategy's performance", responses=StrategyPerformanceSerializer)
    def get(self, request, pk):
        strategy = get_object_or_404(Strategy.objects.select_related("workflow"), pk=pk)
        series = list(selectors.snapshot_series(strategy.pk))
        latest = series[-1] if series else None
        if latest is not None:
            latest.strategy = strategy
        figures = services.strategy_figures(strategy=strategy)  # reads its days, not its trades
        body = {
            "latest": latest,
            "series": series,
            "by_symbol": selectors.by_symbol(figures["by_symbol"]),
            "equity": equity_points(figures["equity"]),
        }
        return Response(StrategyPerformanceSerializer(body).data)

    @extend_schema(
        summary="Take a snapshot of a strategy's figures now",
        request=None,
        responses={201: PerformanceSerializer},
    )
    def post(self, request, pk):
        strategy = get_object_or_404(Strategy, pk=pk)
        row = services.performance_snapshot(strategy=strategy)
        return Response(PerformanceSerializer(row).data, status=status.HTTP_201_CREATED)


class StrategyPnlView(APIView):
    """A strategy's realized P&L net of fees per day, week or month."""

    @extend_schema(
        summary="A strategy's P&L per day, week or month",
        parameters=[OpenApiParameter("period", enum=list(selectors.PERIODS), default="day")],
        responses=PeriodPnlSerializer(many=True),
    )
    def get(self, request, pk):
        strategy = get_object_or_404(Strategy, pk=pk)
        period = request.query_params.get("period", "day")
        if period not in selectors.PERIODS:
            raise ValidationError(
                {"period": f"{period!r} is not one of {', '.join(selectors.PERIODS)}."}
            )
        rows = selectors.pnl_by_period(strategy.pk, period)
        return Response(PeriodPnlSerializer(rows, many=True).data)
