from rest_framework import serializers

from marketdata.models import Code, MarketData
from tradingsite.api.serializers import ModelSerializer


class CodeSerializer(ModelSerializer):
    class Meta:
        model = Code
        fields = [
            "id", "symbol", "conid", "exchange", "currency", "sec_type", "name", "is_active",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["id", "created_at", "updated_at"]
        # A taken conid is refused by the service, naming the code that has it.
        extra_kwargs = {"conid": {"min_value": 1, "validators": []}}


class MarketDataSerializer(ModelSerializer):
    class Meta:
        model = MarketData
        fields = ["id", "conid", "period", "bar", "data", "created_at"]
        read_only_fields = fields


class MarketDataListSerializer(MarketDataSerializer):
    """A listing row: the cached document itself is on the detail endpoint only."""

    class Meta(MarketDataSerializer.Meta):
        fields = ["id", "conid", "period", "bar", "created_at"]
        read_only_fields = fields


class CodeResolveSerializer(serializers.Serializer):
    """A symbol to look up at IB; its conid, currency and security type come from IB."""

    symbol = serializers.CharField(max_length=32, help_text='As IB spells it, e.g. "AAPL".')
    exchange = serializers.CharField(max_length=32, default="SMART")
    currency = serializers.CharField(max_length=8, default="USD")
    sec_type = serializers.CharField(max_length=8, default="STK")
