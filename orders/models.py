from decimal import Decimal

from django.db import models
from django.utils import timezone

from tradingsite.decimals import plain
from tradingsite.fields import choices_check, money_field, price_field, quantity_field


class OrderSide(models.TextChoices):
    BUY = "BUY", "Buy"
    SELL = "SELL", "Sell"


class OrderType(models.TextChoices):
    LMT = "LMT", "Limit"
    MKT = "MKT", "Market"


class TimeInForce(models.TextChoices):
    GTC = "GTC", "Good till cancelled"
    DAY = "DAY", "Day"


class OrderStatus(models.TextChoices):
    SUBMITTED = "submitted", "Submitted"
    PARTIALLY_FILLED = "partially_filled", "Partially filled"
    FILLED = "filled", "Filled"
    CANCELLED = "cancelled", "Cancelled"
    REJECTED = "rejected", "Rejected"


def instrument_field(related_name, **kwargs):
    """The seeds' ``conid`` column: a join to ``code.conid`` without a database foreign key.

    The seeds keep conid as a plain column in orders, trades and positions (the broker may
    report a contract before we store it), so no FK constraint is created; the ORM still joins.
    """
    return models.ForeignKey(
        "marketdata.Code",
        to_field="conid",
        db_column="conid",
        db_constraint=False,
        on_delete=models.PROTECT,
        related_name=related_name,
        verbose_name="IB contract id",
        **kwargs,
    )


def instrument_name(row):
    """The row's symbol when its code came with it (joined, or annotated as ``symbol`` as the
    admin and the API do), else its conid: a title never costs a query of its own."""
    if type(row).instrument.is_cached(row):
        return row.instrument.symbol
    return getattr(row, "symbol", None) or f"conid {row.instrument_id}"


class Order(models.Model):
    """An order sent to Interactive Brokers, usually on behalf of a decision."""

    decision = models.ForeignKey(
        "strategies.Decision",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        db_index=False,
        related_name="orders",
    )
    ibkr_order_id = models.IntegerField("IB order id", null=True, blank=True)
    instrument = instrument_field("orders", db_index=False)
    side = models.CharField(max_length=4, choices=OrderSide.choices)
    quantity = quantity_field()
    price = price_field(null=True, blank=True, help_text="Limit price; empty for market orders")
    order_type = models.CharField(max_length=3, choices=OrderType.choices, default=OrderType.LMT)
    tif = models.CharField(
        "TIF", max_length=3, choices=TimeInForce.choices, default=TimeInForce.DAY
    )
    status = models.CharField(
        max_length=16, choices=OrderStatus.choices, default=OrderStatus.SUBMITTED
    )
    filled_quantity = quantity_field(default=0)
    avg_fill_price = price_field(verbose_name="average fill price", null=True, blank=True)
    # Seed 003's column, our own here: why IB did not take the order, or why it was closed.
    error_message = models.TextField(null=True, blank=True)
    submitted_at = models.DateTimeField(
        null=True, blank=True, help_text="When IB acknowledged the order (seed 003)"
    )
    filled_at = models.DateTimeField(
        null=True, blank=True, help_text="When IB executed its last share (seed 003)"
    )
    canceled_at = models.DateTimeField(
        null=True, blank=True, help_text="When it was cancelled, at IB or here (seed 003)"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "orders"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["ibkr_order_id"], name="ix_orders_ibkr_order_id"),
            models.Index(fields=["status"], name="ix_orders_status"),
            models.Index(fields=["created_at"], name="ix_orders_created_at"),
            models.Index(fields=["instrument"], name="orders_conid_idx"),
            models.Index(fields=["decision"], name="orders_decision_id_idx"),
        ]
        constraints = [
            choices_check("side", OrderSide, "orders"),
            choices_check("order_type", OrderType, "orders"),
            choices_check("tif", TimeInForce, "orders"),
            choices_check("status", OrderStatus, "orders"),
            models.CheckConstraint(
                condition=models.Q(quantity__gt=0), name="ck_orders_quantity_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(price__isnull=True) | models.Q(price__gt=0),
                name="ck_orders_price_positive",
            ),
            # A decision is sent to the broker at most once.
            models.UniqueConstraint(
                fields=["decision"],
                condition=models.Q(decision__isnull=False),
                name="uq_orders_one_per_decision",
            ),
        ]

    def __str__(self):
        price = "" if self.price is None else f" @ {plain(self.price)}"
        return (
            f"Order #{self.pk}: {self.side} {plain(self.quantity)} {instrument_name(self)} "
            f"{self.order_type}{price} ({self.status})"
        )


class Trade(models.Model):
    """A round trip opened by an order's fill; the exit columns fill in as it is closed."""

    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, db_index=False, related_name="trades"
    )
    instrument = instrument_field("trades", db_index=False)
    entry_price = price_field()
    entry_quantity = quantity_field()
    entry_date = models.DateTimeField()
    exit_price = price_field(null=True, blank=True)
    exit_quantity = quantity_field(null=True, blank=True)
    exit_date = models.DateTimeField(null=True, blank=True)
    realized_pnl = money_field(
        verbose_name="realized P&L", null=True, blank=True, help_text="Gross: before fees"
    )
    fees = money_field(
        default=Decimal(0),
        help_text="IB's commissions on its fills: the entry's and its exits' shares (seed 002)",
    )
    # Our own (seed 002's agent_trades.agent_id): the strategy whose decision opened it, kept
    # with the row (none for a manual order) so that a strategy's figures read its own rows
    # through one index instead of joining every order and decision.
    strategy = models.ForeignKey(
        "strategies.Strategy", null=True, blank=True, on_delete=models.PROTECT, db_index=False,
        related_name="+", editable=False,
    )  # fmt: skip
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "trades"
        ordering = ["-entry_date", "-id"]
        indexes = [
            models.Index(fields=["order"], name="ix_trades_order_id"),
            models.Index(fields=["instrument"], name="trades_conid_idx"),
            models.Index(fields=["strategy", "entry_date"], name="ix_trades_strategy"),
            # The open ones only (a few among many closed): a strategy's open trades at once.
            models.Index(
                fields=["strategy"],
                condition=models.Q(exit_quantity__isnull=True)
                | models.Q(exit_quantity__lt=models.F("entry_quantity")),
                name="ix_trades_open_strategy",
            ),
        ]

    def __str__(self):
        return (
            f"Trade #{self.pk}: {plain(self.entry_quantity)} {instrument_name(self)} "
            f"@ {plain(self.entry_price)}"
        )


class TradeExit(models.Model):
    """Our own table (not in the seeds): one closing fill's part of a trade, with the P&L it
    realized when it did. A trade keeps only its latest exit date and its total, so a trade
    closed over several days is told day by day from here (the dashboard's daily P&L)."""

    trade = models.ForeignKey(Trade, on_delete=models.PROTECT, related_name="exits")
    execution = models.ForeignKey(
        "OrderExecution",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="exits",
        help_text="The closing fill",
    )
    quantity = quantity_field()
    price = price_field()
    realized_pnl = money_field(verbose_name="realized P&L", help_text="Gross: before fees")
    fees = money_field(
        default=Decimal(0),
        help_text="The closing fill's commission share plus this quantity's share of the "
        "entry's commission: realized P&L minus fees is IB's realized P&L",
    )
    exited_at = models.DateTimeField()
    # Our own (seed 002's agent_trades.agent_id): the strategy whose decision opened its trade,
    # kept with the row (none for a manual order) so that a strategy's figures read its own rows
    # through one index instead of joining every order and decision.
    strategy = models.ForeignKey(
        "strategies.Strategy", null=True, blank=True, on_delete=models.PROTECT, db_index=False,
        related_name="+", editable=False,
    )  # fmt: skip
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "trade_exits"
        ordering = ["exited_at", "id"]
        indexes = [
            models.Index(fields=["exited_at"], name="ix_trade_exits_exited_at"),
            models.Index(fields=["strategy", "exited_at"], name="ix_trade_exits_strategy"),
        ]

    def __str__(self):
        return f"{plain(self.quantity)} of trade #{self.trade_id} @ {plain(self.price)}"


class Position(models.Model):
    """The holding in one contract; quantity is signed (negative for a short)."""

    instrument = instrument_field("positions", db_index=False)
    quantity = quantity_field()
    average_cost = price_field(
        help_text="Average entry price of the open quantity, first in first out; commissions "
        "are not in it (they are in the trades' fees)"
    )
    current_price = price_field(null=True, blank=True)
    unrealized_pnl = money_field(verbose_name="unrealized P&L", null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(
        null=True, blank=True, help_text="Set when the position is fully exited; the row is kept"
    )

    class Meta:
        db_table = "positions"
        indexes = [models.Index(fields=["instrument"], name="ix_positions_conid")]
        constraints = [
            # One open position per contract; closed ones stay as history.
            models.UniqueConstraint(
                fields=["instrument"],
                condition=models.Q(closed_at__isnull=True),
                name="uq_positions_open_conid",
            ),
        ]

    def __str__(self):
        return f"{plain(self.quantity)} {instrument_name(self)} @ {plain(self.average_cost)}"


class OrderExecution(models.Model):
    """One execution (fill) reported by IB, keyed by its execId.

    IB replays executions after every reconnect; the unique execId makes the second arrival
    change nothing. A fill recorded here rather than reported by IB (``order_fill_record``
    without an execId) gets one starting with ``local-``. The trades, exits and position of a
    contract are a replay of its executions in IB's order (``executed_at``, then execId).
    """

    exec_id = models.CharField(max_length=64, unique=True)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="executions")
    side = models.CharField(max_length=4, choices=OrderSide.choices)
    quantity = quantity_field()
    price = price_field()
    commission = money_field(null=True, blank=True)
    executed_at = models.DateTimeField()
    trade = models.ForeignKey(
        Trade,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="entries",
        help_text="The trade this fill opened or extended, if it opened any quantity",
    )
    opened_quantity = quantity_field(
        default=0, help_text="The part of the fill that opened (the rest closed older trades)"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "order_executions"
        ordering = ["executed_at", "id"]

    def __str__(self):
        return f"{self.exec_id}: {self.side} {self.quantity} @ {self.price}"
