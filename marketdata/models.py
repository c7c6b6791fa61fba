from django.db import models
from django.utils import timezone


class Code(models.Model):
    """A tradable instrument, identified at Interactive Brokers by its contract id (conid)."""

    symbol = models.CharField(max_length=32)
    conid = models.IntegerField(
        "IB contract id", unique=True, help_text="The contract's conid at Interactive Brokers"
    )
    exchange = models.CharField(max_length=32, default="SMART")
    currency = models.CharField(max_length=8, default="USD")
    sec_type = models.CharField(max_length=8, default="STK", help_text="IB security type")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "code"
        ordering = ["symbol"]
        indexes = [models.Index(fields=["symbol"], name="ix_code_symbol")]

    def __str__(self):
        return f"{self.symbol} ({self.exchange}, {self.conid})"


class MarketData(models.Model):
    """Cached historical bars and indicators for one (conid, period, bar); fresh for an hour."""

    conid = models.IntegerField("IB contract id")
    period = models.CharField(max_length=16, help_text='IB duration, e.g. "1 Y"')
    bar = models.CharField(max_length=16, help_text='IB bar size, e.g. "1 day"')
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "market_data"
        verbose_name_plural = "market data"
        indexes = [
            models.Index(fields=["conid", "period", "bar"], name="ix_market_data_cache_key"),
            models.Index(fields=["created_at"], name="market_data_created_at_idx"),
        ]

    def __str__(self):
        # The symbol when the query brought it (the admin annotates it): no query of its own.
        symbol = getattr(self, "symbol", None) or f"conid {self.conid}"
        return f"{symbol} {self.period} / {self.bar} at {self.created_at:%Y-%m-%d %H:%M}"
