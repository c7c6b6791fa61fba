from decimal import Decimal

from rest_framework import serializers

from marketdata.models import Code
from orders.models import Order, OrderSide, OrderType, Position, TimeInForce, Trade
from tradingsite.api.fields import TradingModeField
from tradingsite.api.serializers import ModelSerializer
from tradingsite.fields import price_field, quantity_field

_PRICE = price_field()
_QUANTITY = quantity_field()


class OrderSerializer(ModelSerializer):
    decision_id = serializers.IntegerField(read_only=True, allow_null=True)
    strategy_id = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="The strategy of the order's decision."
    )
    conid = serializers.IntegerField(source="instrument_id", read_only=True)
    symbol = serializers.CharField(read_only=True, allow_null=True)
    trading_mode = TradingModeField()

    class Meta:
        model = Order
        fields = [
            "id", "decision_id", "strategy_id", "ibkr_order_id", "conid", "symbol", "side",
            "quantity", "price", "order_type", "tif", "status", "filled_quantity",
            "avg_fill_price", "error_message", "created_at", "submitted_at", "filled_at",
            "canceled_at", "updated_at", "trading_mode",
        ]  # fmt: skip
        read_only_fields = fields


class OrderPlaceSerializer(serializers.Serializer):
    """A manual order: it goes to the broker at once, with no decision behind it.

    ``orders.services.manual_order_place`` applies the risk limits a workflow's orders pass
    (see ``orders.limits.manual_order_check``).
    """

    code_id = serializers.PrimaryKeyRelatedField(source="code", queryset=Code.objects.all())
    side = serializers.ChoiceField(choices=OrderSide.choices)
    quantity = serializers.DecimalField(
        max_digits=_QUANTITY.max_digits,
        decimal_places=_QUANTITY.decimal_places,
        min_value=Decimal("0.0001"),
    )
    order_type = serializers.ChoiceField(choices=OrderType.choices, default=OrderType.LMT)
    price = serializers.DecimalField(
        max_digits=_PRICE.max_digits,
        decimal_places=_PRICE.decimal_places,
        min_value=Decimal("0.000001"),
        required=False,
        allow_null=True,
        default=None,
        help_text="Limit price; required for LMT, ignored for MKT.",
    )
    tif = serializers.ChoiceField(choices=TimeInForce.choices, default=TimeInForce.DAY)

    def validate(self, attrs):
        if attrs["order_type"] == OrderType.LMT and attrs.get("price") is None:
            raise serializers.ValidationError({"price": "Required for a limit (LMT) order."})
        if attrs["order_type"] == OrderType.MKT:
            attrs["price"] = None
        return attrs


class TradeSerializer(ModelSerializer):
    order_id = serializers.IntegerField(read_only=True)
    strategy_id = serializers.IntegerField(
        read_only=True, allow_null=True,
        help_text="The strategy whose decision opened the trade; null for a manual order",
    )  # fmt: skip
    status = serializers.ChoiceField(
        choices=["open", "closed"], read_only=True, help_text="closed once all of it is exited"
    )
    net_pnl = serializers.DecimalField(
        max_digits=20, decimal_places=6, read_only=True, allow_null=True,
        help_text="Realized P&L net of fees (the exits' P&L minus their fees, as IB reports "
        "it); null while nothing is exited",
    )  # fmt: skip
    conid = serializers.IntegerField(source="instrument_id", read_only=True)
    symbol = serializers.CharField(read_only=True, allow_null=True)
    trading_mode = TradingModeField()

    class Meta:
        model = Trade
        fields = [
            "id", "order_id", "strategy_id", "status", "conid", "symbol", "entry_price",
            "entry_quantity", "entry_date", "exit_price", "exit_quantity", "exit_date",
            "realized_pnl", "fees", "net_pnl",
            "created_at", "updated_at", "trading_mode",
        ]  # fmt: skip
        read_only_fields = fields


class PositionSerializer(ModelSerializer):
    conid = serializers.IntegerField(source="instrument_id", read_only=True)
    symbol = serializers.CharField(read_only=True, allow_null=True)
    trading_mode = TradingModeField()

    class Meta:
        model = Position
        fields = [
            "id", "conid", "symbol", "quantity", "average_cost", "current_price",
            "unrealized_pnl", "updated_at", "closed_at", "trading_mode",
        ]  # fmt: skip
        read_only_fields = fields


class AccountSerializer(serializers.Serializer):
    """The IB account's money, as IB's account summary reports it."""

    account = serializers.CharField(help_text="IB's account code.")
    currency = serializers.CharField(help_text="The account's base currency.")
    net_liquidation = serializers.DecimalField(max_digits=20, decimal_places=2)
    cash = serializers.DecimalField(
        max_digits=20, decimal_places=2, help_text="IB's TotalCashValue."
    )
    buying_power = serializers.DecimalField(max_digits=20, decimal_places=2)
    available_funds = serializers.DecimalField(max_digits=20, decimal_places=2)
    time = serializers.DateTimeField(help_text="When IB's figures were read.")
    trading_mode = TradingModeField()
