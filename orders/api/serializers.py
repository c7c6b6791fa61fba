from datetime import datetime, time
from decimal import Decimal

from django.utils import timezone
from rest_framework import serializers

from marketdata.models import Code, MarketData
from orders.models import Order, OrderSide, OrderStatus, OrderType, Position, TimeInForce, Trade
from strategies.risk import DEFAULTS, MAX_POSITION_SHARE
from tradingsite.api.fields import TradingModeField
from tradingsite.fields import price_field, quantity_field

_PRICE = price_field()
_QUANTITY = quantity_field()


class OrderSerializer(serializers.ModelSerializer):
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
            "avg_fill_price", "created_at", "updated_at", "trading_mode",
        ]  # fmt: skip
        read_only_fields = fields


class OrderPlaceSerializer(serializers.Serializer):
    """A manual order: it goes to the broker at once, with no decision behind it.

    It passes the risk limits a workflow's orders pass (``strategies.risk``, at their default
    settings, as no strategy stands behind it): one position costs at most 10 % of the
    account, at most ``max_open_positions`` open positions, one working order per contract,
    at most ``max_orders_per_day`` manual orders a day. An order that only reduces a position
    is never held back by the first two.
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
        _risk_limits(**attrs)
        return attrs


def _reference_price(code, price):
    """The limit price, else the last price known here (the position's mark, the cache)."""
    if price is not None:
        return price
    position = Position.objects.filter(instrument_id=code.conid, closed_at__isnull=True).first()
    if position is not None and position.current_price:
        return position.current_price
    cached = MarketData.objects.filter(conid=code.conid).order_by("-created_at").first()
    closes = ((cached.data or {}).get("bars") or {}).get("close") if cached else None
    return Decimal(str(closes[-1])) if closes else None


def _risk_limits(*, code, side, quantity, order_type, price, tif):
    position = Position.objects.filter(instrument_id=code.conid, closed_at__isnull=True).first()
    held = position.quantity if position else Decimal(0)
    after = held + (quantity if side == OrderSide.BUY else -quantity)
    reduces_only = abs(after) <= abs(held) and after * held >= 0
    if not reduces_only:
        equity = DEFAULTS["account_size"]
        cap = equity * MAX_POSITION_SHARE
        reference = _reference_price(code, price)
        if reference is None:
            raise serializers.ValidationError(
                {"price": f"No price of {code.symbol} is known to check the position limit: "
                          "send a limit order (LMT with a price)."}
            )  # fmt: skip
        if abs(after) * reference > cap:
            raise serializers.ValidationError(
                {"quantity": f"The position would cost {abs(after) * reference:.2f}, over 10 % "
                             f"of the account ({cap:.2f})."}
            )  # fmt: skip
        limit = DEFAULTS["max_open_positions"]
        if position is None and Position.objects.filter(closed_at__isnull=True).count() >= limit:
            raise serializers.ValidationError(
                {"code_id": f"{limit:.0f} positions are open already (the maximum)."}
            )
    working = Order.objects.filter(
        instrument_id=code.conid,
        decision__isnull=True,
        status__in=(OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED),
    ).first()
    if working is not None:
        raise serializers.ValidationError(
            {"code_id": f"Manual order {working.pk} on {code.symbol} is still working: "
                        "cancel it or wait for its fill."}
        )  # fmt: skip
    today = timezone.make_aware(datetime.combine(timezone.localdate(), time()))
    placed = Order.objects.filter(decision__isnull=True, created_at__gte=today).count()
    limit = DEFAULTS["max_orders_per_day"]
    if placed >= limit:
        raise serializers.ValidationError(
            {"non_field_errors": f"{placed} manual orders today (the maximum is {limit:.0f})."}
        )


class TradeSerializer(serializers.ModelSerializer):
    order_id = serializers.IntegerField(read_only=True)
    conid = serializers.IntegerField(source="instrument_id", read_only=True)
    symbol = serializers.CharField(read_only=True, allow_null=True)
    trading_mode = TradingModeField()

    class Meta:
        model = Trade
        fields = [
            "id", "order_id", "conid", "symbol", "entry_price", "entry_quantity", "entry_date",
            "exit_price", "exit_quantity", "exit_date", "realized_pnl", "created_at",
            "updated_at", "trading_mode",
        ]  # fmt: skip
        read_only_fields = fields


class PositionSerializer(serializers.ModelSerializer):
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
