from django.db import models
from django.utils import timezone


def _money(**kwargs):
    return models.DecimalField(max_digits=20, decimal_places=2, **kwargs)


class AgentPerformance(models.Model):
    """Seed 002's ``agent_performance``: a snapshot of one strategy's figures, net of fees
    (the formulas: ``performance/metrics.py`` and the README). Keyed by ``strategy_id``."""

    strategy = models.ForeignKey(
        "strategies.Strategy", on_delete=models.CASCADE, related_name="performance"
    )
    snapshot_time = models.DateTimeField(default=timezone.now, db_index=True)
    total_value = _money(help_text="Capital (account_size) plus total P&L")
    cash_balance = _money(help_text="Total value less the open trades' market value")
    position_value = _money(help_text="Market value of the open trades (shorts negative)")
    realized_pnl = _money(verbose_name="realized P&L", help_text="Cumulative, net of fees")
    unrealized_pnl = _money(
        verbose_name="unrealized P&L", help_text="Open trades at the position's price, net of "
        "their entry fees"
    )  # fmt: skip
    total_pnl = _money(verbose_name="total P&L")
    roi_percent = models.DecimalField(
        "ROI %", max_digits=10, decimal_places=4, null=True, blank=True
    )
    num_trades = models.IntegerField(default=0, help_text="Closed trades")
    num_winning_trades = models.IntegerField(default=0)
    num_losing_trades = models.IntegerField(default=0)
    win_rate = models.DecimalField("win rate %", max_digits=5, decimal_places=2, null=True,
                                   blank=True)  # fmt: skip
    avg_win = _money(null=True, blank=True)
    avg_loss = _money(null=True, blank=True, help_text="A negative amount")
    profit_factor = models.DecimalField(max_digits=10, decimal_places=4, null=True, blank=True)
    sharpe_ratio = models.DecimalField(max_digits=10, decimal_places=4, null=True, blank=True)
    max_drawdown = models.DecimalField(
        max_digits=10, decimal_places=4, null=True, blank=True, help_text="In money"
    )
    max_drawdown_percent = models.DecimalField(
        "max drawdown %", max_digits=5, decimal_places=2, null=True, blank=True
    )

    class Meta:
        db_table = "agent_performance"
        ordering = ["-snapshot_time", "-id"]
        indexes = [
            models.Index(fields=["strategy", "-snapshot_time"], name="ix_agent_perf_strategy_time")
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(num_winning_trades__lte=models.F("num_trades"))
                & models.Q(num_losing_trades__lte=models.F("num_trades")),
                name="ck_agent_performance_counts",
            ),
        ]

    def __str__(self):
        return f"{self.strategy_id} at {self.snapshot_time:%Y-%m-%d %H:%M}: {self.total_pnl}"
