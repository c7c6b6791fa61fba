from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from orders import selectors, services
from tradingsite.api.pagination import NewestFirstCursorPagination
from tradingsite.api.schema import BROKER_ERRORS
from tradingsite.api.views import ShapedMixin, ValuesListMixin

from .filters import OrderFilter, PositionFilter, TradeFilter
from .serializers import (
    AccountSerializer,
    OrderPlaceSerializer,
    OrderSerializer,
    PositionSerializer,
    TradeSerializer,
)


@extend_schema_view(
    list=extend_schema(summary="List orders, newest first"),
    retrieve=extend_schema(summary="One order"),
)
class OrderViewSet(
    ShapedMixin,
    ValuesListMixin,
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
        order = services.manual_order_place(**placing.validated_data)
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
        order = services.order_cancel(order=self.get_object())
        return Response(self.get_serializer(self._shaped(order)).data)


@extend_schema_view(
    list=extend_schema(summary="List trades, newest entry first"),
    retrieve=extend_schema(summary="One trade"),
)
class TradeViewSet(ValuesListMixin, viewsets.ReadOnlyModelViewSet):
    """Round trips opened by fills, with realized P&L once exited."""

    serializer_class = TradeSerializer
    filterset_class = TradeFilter

    def get_queryset(self):
        return selectors.trades_list()


@extend_schema_view(
    list=extend_schema(summary="List positions (open ones unless state=closed or state=all)"),
    retrieve=extend_schema(summary="One position"),
)
class PositionViewSet(ValuesListMixin, viewsets.ReadOnlyModelViewSet):
    """The holding per contract; quantity is negative for a short."""

    serializer_class = PositionSerializer
    filterset_class = PositionFilter

    def get_queryset(self):
        return selectors.positions_list()

    def filter_queryset(self, queryset):
        # The default state=open belongs to the listing: a closed position's own URL works.
        return super().filter_queryset(queryset) if self.action == "list" else queryset


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
