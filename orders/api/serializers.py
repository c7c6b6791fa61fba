from decimal import Decimal

from rest_framework import serializers

from marketdata.models import Code
from orders.models import (
    Order,
    OrderSide,
    OrderType,
    Position,
    TimeInForce,
    Trade,
    TradingAction,
    TradingMode,
    TradingSession,
)
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
    parent_order_id = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="The entry a bracket's child belongs to."
    )
    conid = serializers.IntegerField(source="instrument_id", read_only=True)
    symbol = serializers.CharField(read_only=True, allow_null=True)
    trading_mode = TradingModeField()

    class Meta:
        model = Order
        fields = [
            "id", "decision_id", "strategy_id", "parent_order_id", "role", "oca_group",
            "ibkr_order_id", "conid", "symbol", "side", "quantity", "price", "order_type",
            "stop_price", "trailing_amount", "trailing_percent", "tif", "status", "filled_quantity",
            "avg_fill_price", "error_message", "created_at", "submitted_at", "filled_at",
            "canceled_at", "updated_at", "trading_mode",
        ]  # fmt: skip
        read_only_fields = fields


class OrderPlaceSerializer(serializers.Serializer):
    """A manual order: it goes to the broker at once, with no decision behind it.

    ``orders.services.order_place_manual`` applies the risk limits a workflow's orders pass
    (see ``orders.limits.manual_order_check``).
    """

    # The fields' types only (this docstring is the OpenAPI schema's): the order's rules (the
    # prices each type needs, positive, whole shares, a stop's side of the market) are
    # orders.services.order_check's, each refusal naming its field.
    code_id = serializers.PrimaryKeyRelatedField(source="code", queryset=Code.objects.all())
    side = serializers.ChoiceField(choices=OrderSide.choices)
    quantity = serializers.DecimalField(
        max_digits=_QUANTITY.max_digits,
        decimal_places=_QUANTITY.decimal_places,
    )
    order_type = serializers.ChoiceField(choices=OrderType.choices, default=OrderType.LMT)
    price = serializers.DecimalField(
        max_digits=_PRICE.max_digits,
        decimal_places=_PRICE.decimal_places,
        required=False,
        allow_null=True,
        default=None,
        help_text="Limit price; required for LMT and STP LMT, ignored for the others.",
    )
    stop_price = serializers.DecimalField(
        max_digits=_PRICE.max_digits,
        decimal_places=_PRICE.decimal_places,
        required=False,
        allow_null=True,
        default=None,
        help_text="Stop (trigger) price, IB's auxPrice; required for STP and STP LMT: below "
        "IB's price now for a SELL, above it for a BUY.",
    )
    trailing_amount = serializers.DecimalField(
        max_digits=_PRICE.max_digits,
        decimal_places=_PRICE.decimal_places,
        required=False,
        allow_null=True,
        default=None,
        help_text="TRAIL: the stop's distance from the price, in money (or trailing_percent).",
    )
    trailing_percent = serializers.DecimalField(
        max_digits=12,
        decimal_places=4,
        required=False,
        allow_null=True,
        default=None,
        help_text="TRAIL: the stop's distance from the price in percent, between 0 and 100.",
    )
    tif = serializers.ChoiceField(choices=TimeInForce.choices, default=TimeInForce.DAY)


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


class TradingActionSerializer(ModelSerializer):
    order_id = serializers.IntegerField(read_only=True, allow_null=True)
    position_id = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = TradingAction
        fields = ["id", "kind", "user", "flatten", "order_id", "position_id", "detail",
                  "created_at"]  # fmt: skip
        read_only_fields = fields


class TradingStatusSerializer(serializers.Serializer):
    """Whether trading is halted (the kill switch), and today's loss against the limit."""

    halted = serializers.BooleanField()
    halted_by = serializers.CharField(allow_null=True)
    halted_at = serializers.DateTimeField(allow_null=True)
    daily_loss_limit_pct = serializers.DecimalField(max_digits=7, decimal_places=4,
                                                    allow_null=True)  # fmt: skip
    daily_pnl = serializers.DecimalField(max_digits=20, decimal_places=2, allow_null=True)
    daily_loss_breached = serializers.BooleanField()


class TradingSessionSerializer(ModelSerializer):
    class Meta:
        model = TradingSession
        fields = [
            "id", "session_name", "started_at", "ended_at", "total_trades", "winning_trades",
            "losing_trades", "total_pnl", "total_commission", "win_rate", "starting_balance",
            "ending_balance", "max_drawdown", "is_active", "broker", "trading_mode", "notes",
        ]  # fmt: skip
        read_only_fields = fields


class TradingSessionStartSerializer(serializers.Serializer):
    session_name = serializers.CharField(max_length=100)
    trading_mode = serializers.ChoiceField(choices=TradingMode.choices, required=False)
    starting_balance = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=Decimal(0), required=False, allow_null=True,
        help_text="Default: IB's net liquidation now",
    )  # fmt: skip
    notes = serializers.CharField(required=False, allow_blank=True, default="")
