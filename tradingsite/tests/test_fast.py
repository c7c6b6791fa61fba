"""The speed layer (``tradingsite/fast.py``) gives exactly what DRF, django-filter and Django
give: its overrides one by one, and the API's bytes with ``API_FAST`` on and off."""

import copy
import decimal
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.db import connection
from django.db.backends.postgresql.psycopg_any import register_tzloader
from django.urls import reverse
from django_filters import rest_framework as filters
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer

from marketdata.api.serializers import CodeSerializer, MarketDataListSerializer
from marketdata.models import Code
from marketdata.selectors import codes_list, market_data_list
from orders.api.filters import OrderFilter, PositionFilter
from orders.api.serializers import OrderSerializer, PositionSerializer, TradeSerializer
from orders.models import Order, OrderStatus, OrderType
from orders.selectors import orders_list, positions_list, trades_list
from orders.tests.factories import OrderFactory
from strategies.api.serializers import DecisionSerializer, StrategySerializer
from strategies.models import Strategy
from strategies.selectors import decisions_list, strategies_list
from tradingsite.api.filters import FilterSet
from tradingsite.database import timestamptz_adapters_register
from tradingsite.fast import OVERRIDES, TimestamptzLoader, fast
from tradingsite.testing.api import APITestCase, results
from tradingsite.testing.factories import MarketDataFactory, make_decision, make_fill
from workflows.api.serializers import ExecutionSerializer, WorkflowSerializer
from workflows.models import WorkflowExecution
from workflows.selectors import executions_list, workflows_list
from workflows.tests.factories import WorkflowFactory

pytestmark = pytest.mark.django_db

AT = datetime(2024, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)


def drf_twin(serializer_class):
    """The same serializer on DRF's own ModelSerializer: DRF's fields and reading."""
    declared = copy.deepcopy(serializer_class._declared_fields)
    return type(
        f"DRF{serializer_class.__name__}",
        (serializers.ModelSerializer,),
        {**declared, "Meta": serializer_class.Meta},
    )


def rendered(serializer):
    return JSONRenderer().render(serializer.data)


def orders_of_every_shape():
    """Nulls, decimals with and without their places, date-times with microseconds, a contract
    stored as no code (a null symbol)."""
    make_fill(quantity="3.5", price="101.25")  # filled: avg_fill_price, a trade, a position
    OrderFactory(decision=make_decision(), created_at=AT, quantity=Decimal("1"))
    OrderFactory(order_type=OrderType.MKT, price=None, ibkr_order_id=None, created_at=AT)
    strategy = Strategy.objects.first()
    WorkflowExecution.objects.create(
        strategy=strategy, workflow=WorkflowFactory(), started_at=AT, results={"n": 1.5}
    )
    WorkflowExecution.objects.create(strategy=strategy)  # nulls, an empty results
    MarketDataFactory(created_at=AT)
    Order.objects.create(
        instrument_id=777_001, side="SELL", quantity=Decimal("2"), price=Decimal("5"),
        status=OrderStatus.REJECTED, created_at=AT + timedelta(1),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("serializer_class", "selector"),
    [
        (OrderSerializer, orders_list),
        (TradeSerializer, trades_list),
        (PositionSerializer, positions_list),
        (DecisionSerializer, decisions_list),
        (StrategySerializer, strategies_list),
        (WorkflowSerializer, workflows_list),
        (ExecutionSerializer, executions_list),
        (CodeSerializer, codes_list),
        (MarketDataListSerializer, lambda: market_data_list(with_data=False)),
    ],
)
def test_rows_read_as_drf_reads_them(serializer_class, selector):
    orders_of_every_shape()
    instances = list(selector())
    assert instances
    expected = rendered(drf_twin(serializer_class)(instances, many=True))
    assert rendered(serializer_class(instances, many=True)) == expected
    assert rendered(serializer_class(instances[0])) == rendered(
        drf_twin(serializer_class)(instances[0])
    )


def test_a_method_field_is_read_as_drf_reads_it():
    class WithAMethod(OrderSerializer):
        note = serializers.SerializerMethodField()

        class Meta(OrderSerializer.Meta):
            fields = [*OrderSerializer.Meta.fields, "note"]

        def get_note(self, order):
            return f"{order.side} {order.quantity}"

    order = OrderFactory()
    assert WithAMethod(orders_list().get(pk=order.pk)).data["note"] == "BUY 10.0000"


def test_each_serializer_has_fields_of_its_own():
    first, second = OrderSerializer(), OrderSerializer()
    for name in ("status", "price", "trading_mode"):
        assert first.fields[name] is not second.fields[name]
        assert first.fields[name].parent is first and second.fields[name].parent is second
    many = StrategySerializer().fields["codes"], StrategySerializer().fields["codes"]
    assert many[0].child_relation is not many[1].child_relation


def outcome(function, *args):
    """What ``function`` returns, or the type of what it raises."""
    try:
        return (None, function(*args))
    except Exception as error:  # noqa: BLE001 - compared, never swallowed
        return (type(error), None)


def test_a_decimal_field_writes_drfs_text():
    ours = OrderSerializer().fields["price"]
    drf = serializers.DecimalField(max_digits=18, decimal_places=6)
    for value in ("0", "1", "101.25", "123456789012.123456", "0.0000005", "-3.5"):
        assert ours.to_representation(Decimal(value)) == drf.to_representation(Decimal(value))
    # As read from numeric(18, 6): six places, written without quantizing; and beside them
    # what a column cannot hold, which goes through DRF's quantizing as before.
    for value in ("0.000000", "-0.000000", "999999999999.999999", "-1.500000", "2E-6"):
        assert ours.to_representation(Decimal(value)) == drf.to_representation(Decimal(value))
    for value in ("NaN", "Infinity", "1000000000000.000000", "1E+20"):
        assert outcome(ours.to_representation, Decimal(value)) == outcome(
            drf.to_representation, Decimal(value)
        )
    assert outcome(ours.to_representation, Decimal("1E+20"))[0] is decimal.InvalidOperation
    assert ours.to_internal_value("1.5") == drf.to_internal_value("1.5")


LISTINGS = [
    ("api:order-list", {}), ("api:order-list", {"status": "filled"}),
    ("api:order-list", {"status": "nope"}), ("api:trade-list", {}),
    ("api:position-list", {"closed": "all"}), ("api:decision-list", {}),
    ("api:strategy-list", {}), ("api:code-list", {}), ("api:workflow-list", {}),
    ("api:execution-list", {}), ("api:market-data-list", {}),
]  # fmt: skip


class TestSpeedLayerOff(APITestCase):
    @pytest.mark.parametrize(("name", "query"), LISTINGS)
    def test_every_listing_gives_the_same_bytes_with_the_speed_layer_off(
        self, reader_client, settings, name, query
    ):
        orders_of_every_shape()
        make_fill()
        WorkflowExecution.objects.create(strategy=Strategy.objects.first(), task_id="t-1")
        MarketDataFactory()
        url = reverse(name)
        settings.API_FAST = True
        fast = reader_client.get(url, query)
        settings.API_FAST = False
        plain = reader_client.get(url, query)
        assert fast.status_code == plain.status_code
        assert fast.content == plain.content
        assert len(fast.content) > 60 or fast.status_code == 400  # rows, not an empty page

    @pytest.mark.parametrize("override", OVERRIDES)
    def test_each_override_steps_aside_alone_and_the_bytes_stay(
        self, reader_client, settings, override
    ):
        orders_of_every_shape()
        url = reverse("api:order-list")
        everything = reader_client.get(url).content
        settings.API_FAST_OFF = [override]
        assert fast(override) is False
        assert all(fast(other) for other in OVERRIDES if other != override)
        connection.ensure_connection()
        if override == "timestamptz":  # a connection's: as a new one would be made with it off
            register_tzloader(connection.timezone, connection.connection)
        try:
            assert reader_client.get(url).content == everything
        finally:
            settings.API_FAST_OFF = []
            timestamptz_adapters_register(None, connection)


class TestOrdersListing(APITestCase):
    def test_the_cursor_walks_every_page_once_with_the_same_rows(self, reader_client):
        orders_of_every_shape()
        for _ in range(4):
            OrderFactory(created_at=AT)  # ties on created_at, broken by the id
        url, seen = reverse("api:order-list") + "?page_size=2", []
        while url:
            body = reader_client.get(url).json()
            seen += body["results"]
            url = body["next"]
        assert [row["id"] for row in seen] == list(orders_list().values_list("id", flat=True))
        detail = reader_client.get(reverse("api:order-detail", kwargs={"pk": seen[-1]["id"]}))
        assert detail.json() == seen[-1]

    def test_a_filter_still_refuses_a_bad_value_and_filters(self, reader_client):
        make_fill()
        OrderFactory()
        url = reverse("api:order-list")
        assert reader_client.get(url, {"status": "nope"}).status_code == 400
        assert [row["status"] for row in results(reader_client.get(url, {"status": "filled"}))] == [
            "filled"
        ]


def test_a_filterset_makes_its_form_class_once():
    assert OrderFilter({}).get_form_class() is OrderFilter({}).get_form_class()
    OrderFilter({"status": "nope"}).is_valid()  # its own form, its own errors
    assert OrderFilter({"status": "filled"}).is_valid()


def test_each_filterset_has_filters_of_its_own_and_method_filters_call_their_own():
    """Filters are copied shallowly per filterset: each copy has its own parent, and a
    ``method`` filter calls the method of the filterset it belongs to."""
    first, second = PositionFilter({}), PositionFilter({"state": "closed"})
    for name, declared in PositionFilter.base_filters.items():
        assert first.filters[name] is not second.filters[name] is not declared
        assert first.filters[name].parent is first and second.filters[name].parent is second
    calls = []

    class Recording(PositionFilter):
        def filter_state(self, queryset, name, value):
            calls.append((self, value))
            return queryset

    recording = Recording({"state": "all"}, queryset=positions_list())
    assert recording.is_valid()
    recording.qs  # noqa: B018  (filtering happens when qs is read)
    assert calls == [(recording, "all")]
    # (The real method, open by default and closed on request: orders/tests/test_api.py.)


def test_a_filterset_with_a_request_dependent_filter_makes_its_form_every_time():
    class ByCode(FilterSet):
        code = filters.ModelChoiceFilter(
            field_name="instrument", queryset=lambda request: Code.objects.all()
        )

        class Meta:
            model = Order
            fields = []

    assert ByCode({}).get_form_class() is not ByCode({}).get_form_class()


def test_selectors_give_a_fresh_queryset_each_call():
    assert orders_list() is not orders_list()
    assert list(orders_list()) == []
    order = OrderFactory()
    assert list(orders_list()) == [order]


def test_date_times_are_read_as_djangos_own_loader_reads_them():
    sql = (
        "SELECT '2024-03-04 05:06:07.890123+05:30'::timestamptz, '0001-01-01 00:00:00+00'"
        "::timestamptz, '9999-12-31 23:59:59.999999+00'::timestamptz, now()"
    )
    with connection.cursor() as cursor:
        assert issubclass(cursor.cursor.adapters.get_loader(1184, 0), TimestamptzLoader)
        cursor.execute(sql)
        ours = cursor.fetchone()
    with connection.cursor() as cursor:
        register_tzloader(connection.timezone, cursor.cursor)
        assert not issubclass(cursor.cursor.adapters.get_loader(1184, 0), TimestamptzLoader)
        cursor.execute(sql)
        djangos = cursor.fetchone()
    assert ours[:3] == djangos[:3]
    assert [value.tzinfo for value in ours] == [value.tzinfo for value in djangos]
    assert ours[0] == AT.replace(microsecond=890123) + timedelta(hours=-5, minutes=-30)


@pytest.mark.parametrize(
    ("moment", "as_text"),
    [
        (datetime(2024, 1, 1, tzinfo=timezone(-timedelta(hours=17, minutes=25))),
         "2024-01-01 17:25:00+00"),
        (datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=15, minutes=59))),
         "2023-12-31 08:01:00+00"),
        (datetime(9999, 12, 31, 23, tzinfo=timezone(-timedelta(hours=17))),
         "10000-01-01 16:00:00+00"),
        (datetime(1, 1, 1, 5, 30, tzinfo=timezone(timedelta(hours=20))),
         "0001-12-31 09:30:00+00 BC"),
    ],
)  # fmt: skip
def test_a_date_time_of_any_offset_python_takes_reaches_postgresql_as_its_moment(moment, as_text):
    """PostgreSQL refuses offsets of 16 hours and more, which Python takes; near the ends of
    the calendar the UTC moment is one Python cannot hold."""
    with connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'UTC'")
        cursor.execute("SELECT %s::timestamptz::text", [moment])
        assert cursor.fetchone() == (as_text,)
    order = OrderFactory(created_at=AT)
    assert list(Order.objects.filter(created_at__lt=moment)) == ([order] if moment > AT else [])
