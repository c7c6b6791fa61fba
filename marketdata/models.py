from django.db import models
from django.utils import timezone

from tradingsite.broker.types import ContractInfo


class Code(models.Model):
    """A tradable instrument, identified at Interactive Brokers by its contract id (conid)."""

    symbol = models.CharField(max_length=32)
    conid = models.IntegerField(
        "IB contract id", unique=True, help_text="The contract's conid at Interactive Brokers"
    )
    exchange = models.CharField(max_length=32, default="SMART")
    currency = models.CharField(max_length=8, default="USD")
    sec_type = models.CharField(max_length=8, default="STK", help_text="IB security type")
    # Seed 004's ticker metadata: the company's name, and whether the bar store syncs it.
    name = models.CharField(max_length=255, blank=True, default="")
    is_active = models.BooleanField(
        default=True, help_text="Active codes have their bars synced from IB into the bar store"
    )
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


class Timeframe(models.TextChoices):
    """Seed 004's timeframes, plus the other IB bar sizes the store keeps."""

    MIN_1 = "1Min", "1 minute"
    MIN_5 = "5Min", "5 minutes"
    MIN_15 = "15Min", "15 minutes"
    MIN_30 = "30Min", "30 minutes"
    HOUR_1 = "1Hour", "1 hour"
    DAY_1 = "1Day", "1 day"
    WEEK_1 = "1Week", "1 week"


class BarSource(models.TextChoices):
    IB = "ib", "IB"
    CSV_IMPORT = "csv_import", "CSV import"
    PARQUET_IMPORT = "parquet_import", "Parquet import"
    AGGREGATED = "aggregated", "aggregated"


class OhlcvBar(models.Model):
    """One stored bar (seed 004): prices as the feed gives them (floats, the indicators'
    input), one row per (code, timeframe, start time in UTC)."""

    id = models.BigAutoField(primary_key=True)
    ticker = models.ForeignKey(Code, on_delete=models.CASCADE, related_name="bars")
    timeframe = models.CharField(max_length=10, choices=Timeframe.choices)
    timestamp = models.DateTimeField(help_text="The bar's start, UTC")
    open = models.FloatField()
    high = models.FloatField()
    low = models.FloatField()
    close = models.FloatField()
    volume = models.BigIntegerField()
    trade_count = models.IntegerField(null=True, blank=True)
    source = models.CharField(max_length=20, choices=BarSource.choices)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "ohlcv_bars"
        verbose_name = "bar"
        constraints = [
            models.UniqueConstraint(
                fields=["ticker", "timeframe", "timestamp"], name="uq_ohlcv_ticker_timeframe_ts"
            ),
            models.CheckConstraint(
                condition=models.Q(timeframe__in=Timeframe.values), name="ohlcv_timeframe_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(source__in=BarSource.values), name="ohlcv_source_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(high__gte=models.F("low")), name="ohlcv_high_gte_low"
            ),
            models.CheckConstraint(
                condition=models.Q(high__gte=models.F("open")), name="ohlcv_high_gte_open"
            ),
            models.CheckConstraint(
                condition=models.Q(high__gte=models.F("close")), name="ohlcv_high_gte_close"
            ),
            models.CheckConstraint(
                condition=models.Q(low__lte=models.F("open")), name="ohlcv_low_lte_open"
            ),
            models.CheckConstraint(
                condition=models.Q(low__lte=models.F("close")), name="ohlcv_low_lte_close"
            ),
            *(
                models.CheckConstraint(
                    condition=models.Q(**{f"{price}__gt": 0}), name=f"ohlcv_{price}_positive"
                )
                for price in ("open", "high", "low", "close")
            ),
            models.CheckConstraint(
                condition=models.Q(volume__gte=0), name="ohlcv_volume_not_negative"
            ),
        ]
        indexes = [models.Index(fields=["timestamp"], name="ix_ohlcv_timestamp")]

    def __str__(self):
        return f"{self.ticker_id} {self.timeframe} {self.timestamp:%Y-%m-%d %H:%M}"


class SyncStatus(models.TextChoices):
    SUCCESS = "success", "success"
    PARTIAL = "partial", "partial"
    FAILED = "failed", "failed"


class DataSyncLog(models.Model):
    """One row per sync of a (code, timeframe) from IB into the bar store (seed 004)."""

    ticker = models.ForeignKey(Code, on_delete=models.CASCADE, related_name="sync_logs")
    timeframe = models.CharField(max_length=10, choices=Timeframe.choices)
    last_synced_timestamp = models.DateTimeField(null=True, blank=True)
    first_synced_timestamp = models.DateTimeField(null=True, blank=True)
    last_sync_at = models.DateTimeField(default=timezone.now)
    bars_fetched = models.IntegerField(default=0)
    total_bars = models.IntegerField(default=0)
    status = models.CharField(max_length=20, choices=SyncStatus.choices)
    error_message = models.TextField(null=True, blank=True)

    class Meta:
        db_table = "data_sync_log"
        verbose_name = "data sync"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=SyncStatus.values), name="data_sync_log_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(timeframe__in=Timeframe.values),
                name="data_sync_log_timeframe_valid",
            ),
        ]
        indexes = [
            models.Index(
                fields=["ticker", "timeframe", "-last_sync_at"], name="ix_data_sync_log_latest"
            )
        ]

    def __str__(self):
        return (
            f"{self.ticker_id} {self.timeframe} {self.status} at {self.last_sync_at:%Y-%m-%d %H:%M}"
        )


def contract_of(code):
    """The broker's description of ``code``'s contract."""
    return ContractInfo(
        conid=code.conid,
        symbol=code.symbol,
        exchange=code.exchange,
        currency=code.currency,
        sec_type=code.sec_type,
    )
