from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from marketdata import selectors, services
from tradingsite.api.schema import BROKER_ERRORS

from .filters import CodeFilter, MarketDataFilter
from .serializers import (
    CodeResolveSerializer,
    CodeSerializer,
    MarketDataListSerializer,
    MarketDataSerializer,
)


@extend_schema_view(
    list=extend_schema(summary="List instruments"),
    retrieve=extend_schema(summary="One instrument"),
    create=extend_schema(summary="Store an instrument whose IB conid is known"),
    update=extend_schema(summary="Change an instrument"),
    partial_update=extend_schema(summary="Change some fields of an instrument"),
    destroy=extend_schema(summary="Delete an instrument no decision or order names"),
)
class CodeViewSet(viewsets.ModelViewSet):
    """Instruments (table ``code``); ``conid`` is IB's contract id and unique."""

    serializer_class = CodeSerializer
    filterset_class = CodeFilter

    def get_queryset(self):
        return selectors.codes_list()

    def perform_create(self, serializer):
        serializer.instance = services.code_create(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.code_update(
            code=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.code_delete(code=instance)

    @extend_schema(
        summary="Look a symbol up at IB and store it (or refresh the stored one)",
        description="The conid, currency and security type are IB's. A symbol IB does not "
        "know is a 400 naming `symbol`.",
        request=CodeResolveSerializer,
        responses={200: CodeSerializer, **BROKER_ERRORS},
    )
    @action(detail=False, methods=["post"], filterset_class=None, pagination_class=None)
    def resolve(self, request):
        resolving = CodeResolveSerializer(data=request.data)
        resolving.is_valid(raise_exception=True)
        code = services.code_resolve(**resolving.validated_data)
        return Response(self.get_serializer(code).data)


@extend_schema_view(
    list=extend_schema(summary="List cached market data (without the bars document)"),
    retrieve=extend_schema(summary="One cached market-data row with its bars and indicators"),
)
class MarketDataViewSet(viewsets.ReadOnlyModelViewSet):
    """The market-data cache: bars and indicators per (conid, period, bar), read-only."""

    filterset_class = MarketDataFilter

    def get_queryset(self):
        return selectors.market_data_list(with_data=self.action != "list")

    def get_serializer_class(self):
        return MarketDataListSerializer if self.action == "list" else MarketDataSerializer
