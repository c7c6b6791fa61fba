from django.contrib import admin

from tradingsite.admin_tools import ReadOnlyAdmin, change_url, link

from .models import AgentPerformance


@admin.register(AgentPerformance)
class AgentPerformanceAdmin(ReadOnlyAdmin):
    """Each strategy's figures over time, net of fees (README: "Performance")."""

    list_display = (
        "snapshot_time", "strategy_link", "total_value", "realized_pnl", "unrealized_pnl",
        "total_pnl", "roi_percent", "num_trades", "win_rate", "profit_factor", "sharpe_ratio",
        "max_drawdown", "max_drawdown_percent",
    )  # fmt: skip
    list_filter = ("strategy",)
    date_hierarchy = "snapshot_time"
    ordering = ("-snapshot_time", "-id")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("strategy")

    @admin.display(description="strategy", ordering="strategy__name")
    def strategy_link(self, row):
        return link(change_url(row.strategy), row.strategy.name)
