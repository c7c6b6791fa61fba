from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from performance.models import AgentPerformance
from tradingsite.api.serializers import ModelSerializer

FIGURES = [
    "snapshot_time", "total_value", "cash_balance", "position_value", "realized_pnl",
    "unrealized_pnl", "total_pnl", "roi_percent", "num_trades", "num_winning_trades",
    "num_losing_trades", "win_rate", "avg_win", "avg_loss", "profit_factor", "sharpe_ratio",
    "max_drawdown", "max_drawdown_percent",
]  # fmt: skip


class PerformanceSerializer(ModelSerializer):
    """One snapshot of a strategy's figures, net of fees (seed 002's ``agent_performance``)."""

    strategy_id = serializers.IntegerField(read_only=True)
    strategy_name = serializers.CharField(source="strategy.name", read_only=True)

    class Meta:
        model = AgentPerformance
        fields = ["id", "strategy_id", "strategy_name", *FIGURES]
        read_only_fields = fields


class SeriesPointSerializer(ModelSerializer):
    class Meta:
        model = AgentPerformance
        fields = ["snapshot_time", "total_value", "total_pnl", "max_drawdown_percent"]
        read_only_fields = fields


class SymbolPerformanceSerializer(serializers.Serializer):
    """One symbol's closed trades of the strategy (freqtrade's ``/performance``)."""

    symbol = serializers.CharField(allow_null=True)
    conid = serializers.IntegerField()
    num_trades = serializers.IntegerField()
    net_pnl = serializers.DecimalField(max_digits=20, decimal_places=2)
    fees = serializers.DecimalField(max_digits=20, decimal_places=2)


class EquityPointSerializer(serializers.Serializer):
    """One weekday of the equity curve the figures come from (README: "Performance")."""

    day = serializers.DateField()
    equity = serializers.DecimalField(max_digits=20, decimal_places=2)
    drawdown_percent = serializers.DecimalField(
        max_digits=7, decimal_places=2, help_text="Fall below the peak so far, in percent"
    )


@extend_schema_field(EquityPointSerializer(many=True))
class EquityCurveField(serializers.Field):
    """The curve as ``EquityPointSerializer`` writes each point (the amounts are already in
    cents, ``panels.equity_points``), without its work per field: years of a strategy are
    thousands of points, the larger part of the response's time."""

    def to_representation(self, points):
        return [
            {
                "day": point["day"].isoformat(),
                "equity": format(point["equity"], "f"),
                "drawdown_percent": format(point["drawdown_percent"], "f"),
            }
            for point in points
        ]


class StrategyPerformanceSerializer(serializers.Serializer):
    latest = PerformanceSerializer(allow_null=True, help_text="The newest snapshot")
    series = SeriesPointSerializer(many=True, help_text="Every snapshot, oldest first")
    by_symbol = SymbolPerformanceSerializer(many=True)
    equity = EquityCurveField(
        read_only=True, help_text="The daily equity curve now, with its drawdown, oldest first"
    )


class PeriodPnlSerializer(serializers.Serializer):
    """The strategy's realized P&L net of fees over one day, week (from Monday) or month."""

    period_start = serializers.DateField()
    net_pnl = serializers.DecimalField(max_digits=20, decimal_places=2)
    fees = serializers.DecimalField(max_digits=20, decimal_places=2)
    exits = serializers.IntegerField()
