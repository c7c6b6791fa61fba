from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from orders import selectors, services
from orders.models import TradingAction, TradingSession
from tradingsite.api.pagination import NewestFirstCursorPagination
from tradingsite.api.schema import BROKER_ERRORS
from tradingsite.api.views import ShapedMixin

from .filters import OrderFilter, PositionFilter, TradeFilter
from .serializers import (
    AccountSerializer,
    OrderPlaceSerializer,
    OrderSerializer,
    PositionSerializer,
    TradeSerializer,
    TradingActionSerializer,
    TradingSessionSerializer,
    TradingSessionStartSerializer,
)


@extend_schema_view(
    list=extend_schema(summary="List orders, newest first"),
    retrieve=extend_schema(summary="One order"),
)
class OrderViewSet(
    ShapedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Orders sent to Interactive Brokers; their status follows what IB reports."""

    serializer_class = OrderSerializer
    filterset_class = OrderFilter
    pagination_class = NewestFirstCursorPagination

    def get_queryset(self):
        return selectors.orders_list()

    @extend_schema(
        summary="Place a manual order with the broker",
        request=OrderPlaceSerializer,
        responses={201: OrderSerializer, **BROKER_ERRORS},
    )
    def create(self, request, *args, **kwargs):
        placing = OrderPlaceSerializer(data=request.data)
        placing.is_valid(raise_exception=True)
        order = services.order_place_manual(**placing.validated_data)
        return Response(
            self.get_serializer(self._shaped(order)).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        summary="Ask the broker to cancel an order",
        request=None,
        responses={200: OrderSerializer, **BROKER_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        order = services.order_cancel(order=self.get_object(), user=request.user)
        return Response(self.get_serializer(self._shaped(order)).data)


@extend_schema_view(
    list=extend_schema(summary="List trades, newest entry first"),
    retrieve=extend_schema(summary="One trade"),
)
class TradeViewSet(viewsets.ReadOnlyModelViewSet):
    """Round trips opened by fills, with realized P&L once exited."""

    serializer_class = TradeSerializer
    filterset_class = TradeFilter

    def get_queryset(self):
        return selectors.trades_list()


@extend_schema_view(
    list=extend_schema(summary="List positions (open ones unless state=closed or state=all)"),
    retrieve=extend_schema(summary="One position"),
)
class PositionViewSet(viewsets.ReadOnlyModelViewSet):
    """The holding per contract; quantity is negative for a short."""

    serializer_class = PositionSerializer
    filterset_class = PositionFilter

    def get_queryset(self):
        return selectors.positions_list()

    def filter_queryset(self, queryset):
        # The default state=open belongs to the listing: a closed position's own URL works.
        return super().filter_queryset(queryset) if self.action == "list" else queryset

    @extend_schema(
        summary="Close the position at market (its bracket's stop and target are cancelled "
        "by IB as the exit fills); recorded with who and when",
        request=None,
        responses={200: OrderSerializer(many=True), **BROKER_ERRORS},
    )
    @action(detail=True, methods=["post"], permission_classes=[IsAdminUser])
    def close(self, request, pk=None):
        exits = services.position_close(position=self.get_object(), user=request.user)
        shaped = selectors.orders_list().filter(pk__in=[o.pk for o in exits])
        return Response(OrderSerializer(shaped, many=True, context={"request": request}).data)


@extend_schema_view(
    list=extend_schema(summary="The trader's controls used: closes, cancels, kill switches"),
    retrieve=extend_schema(summary="One use of the trader's controls"),
)
class TradingActionViewSet(viewsets.ReadOnlyModelViewSet):
    """Every close, cancel, kill switch and resume, with who and when (newest first)."""

    serializer_class = TradingActionSerializer
    queryset = TradingAction.objects.order_by("-created_at", "-id")


class AccountView(APIView):
    """The IB account's net liquidation, cash, buying power and available funds, read from
    IB now. Staff only: it names the account."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        summary="The IB account's money (IB's account summary)",
        responses={200: AccountSerializer, **BROKER_ERRORS},
    )
    def get(self, request):
        return Response(AccountSerializer(selectors.account_summary()).data)


@extend_schema_view(
    list=extend_schema(summary="Trading sessions, newest first"),
    retrieve=extend_schema(summary="One trading session and its figures"),
)
class TradingSessionViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Seed 003's trading sessions: one active per trading mode, started and ended here, its
    figures computed from the fills and exits within it (read-only)."""

    serializer_class = TradingSessionSerializer
    queryset = TradingSession.objects.order_by("-started_at", "-id")

    @extend_schema(summary="Start a trading session", request=TradingSessionStartSerializer,
                   responses={201: TradingSessionSerializer})  # fmt: skip
    def create(self, request, *args, **kwargs):
        asked = TradingSessionStartSerializer(data=request.data)
        asked.is_valid(raise_exception=True)
        session = services.trading_session_start(**asked.validated_data)
        return Response(self.get_serializer(session).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="End the session (its figures are computed a last time)",
                   request=None, responses={200: TradingSessionSerializer})  # fmt: skip
    @action(detail=True, methods=["post"])
    def end(self, request, pk=None):
        session = services.trading_session_end(session=self.get_object())
        return Response(self.get_serializer(session).data)

    @extend_schema(summary="Compute the session's figures now", request=None,
                   responses={200: TradingSessionSerializer})  # fmt: skip
    @action(detail=True, methods=["post"])
    def refresh(self, request, pk=None):
        session = services.trading_session_refresh(session=self.get_object())
        return Response(self.get_serializer(session).data)
