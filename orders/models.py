from decimal import Decimal

from django.db import models
from django.utils import timezone

from tradingsite.decimals import plain
from tradingsite.fields import choices_check, money_field, price_field, quantity_field
from tradingsite.money import price_text


class OrderSide(models.TextChoices):
    BUY = "BUY", "Buy"
    SELL = "SELL", "Sell"


class OrderType(models.TextChoices):
    """IB's order types (seed 000's LMT and MKT; seed 003's stop, stop_limit, trailing_stop)."""

    LMT = "LMT", "Limit"
    MKT = "MKT", "Market"
    STP = "STP", "Stop"
    STP_LMT = "STP LMT", "Stop limit"
    TRAIL = "TRAIL", "Trailing stop"


class OrderRole(models.TextChoices):
    """Our own: what an order is to its decision's bracket."""

    ENTRY = "entry", "Entry"
    TAKE_PROFIT = "take_profit", "Take profit"
    STOP_LOSS = "stop_loss", "Stop loss"
    EXIT = "exit", "Exit"


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
    price = price_field(
        null=True, blank=True, help_text="Limit price (LMT, STP LMT); empty for the others"
    )
    order_type = models.CharField(max_length=7, choices=OrderType.choices, default=OrderType.LMT)
    stop_price = price_field(
        null=True, blank=True, help_text="The trigger price of a stop (IB's auxPrice; seed 003)"
    )
    trailing_amount = price_field(
        null=True, blank=True, help_text="A trailing stop's distance from the price, in money"
    )
    trailing_percent = models.DecimalField(
        max_digits=7,
        decimal_places=4,
        null=True,
        blank=True,
        help_text="A trailing stop's distance from the price, in percent (0 to 100)",
    )
    parent_order = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
        help_text="The entry a take-profit or stop-loss child belongs to (IB's parentId)",
    )
    role = models.CharField(
        max_length=16,
        choices=OrderRole.choices,
        null=True,
        blank=True,
        help_text="Its part in its decision's bracket; empty for a manual order",
    )
    oca_group = models.CharField(
        "OCA group",
        max_length=64,
        null=True,
        blank=True,
        help_text="Orders of one group cancel each other at IB once one fills",
    )
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
            models.CheckConstraint(
                condition=models.Q(stop_price__isnull=True) | models.Q(stop_price__gt=0),
                name="ck_orders_stop_price_positive",
            ),
            models.CheckConstraint(
                condition=models.Q(trailing_amount__isnull=True) | models.Q(trailing_amount__gt=0),
                name="ck_orders_trailing_amount_positive",
            ),
            models.CheckConstraint(
                condition=models.Q(trailing_percent__isnull=True)
                | models.Q(trailing_percent__gt=0, trailing_percent__lt=100),
                name="ck_orders_trailing_percent_range",
            ),
            models.CheckConstraint(
                condition=models.Q(role__isnull=True) | models.Q(role__in=OrderRole.values),
                name="ck_orders_role",
            ),
            # A decision is sent to the broker at most once: one entry (its bracket's children
            # hang from it).
            models.UniqueConstraint(
                fields=["decision"],
                condition=models.Q(decision__isnull=False, parent_order__isnull=True),
                name="uq_orders_one_per_decision",
            ),
        ]

    def __str__(self):
        price = "" if self.price is None else f" @ {price_text(self.price)}"
        if self.stop_price is not None:
            price += f" stop {price_text(self.stop_price)}"
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
            f"@ {price_text(self.entry_price)}"
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
        return f"{plain(self.quantity)} of trade #{self.trade_id} @ {price_text(self.price)}"


class StrategyPnlDay(models.Model):
    """Our own table: one strategy's trading on one contract and one day (UTC), counted from
    its trades and exits by the ledger in the transaction that books them. A strategy's
    performance figures read a row a day from here instead of every trade it ever closed;
    the sums are NUMERIC, so they are exactly those of the trades themselves."""

    strategy = models.ForeignKey(
        "strategies.Strategy", on_delete=models.CASCADE, db_index=False, related_name="+"
    )
    instrument = instrument_field("+", db_index=False)
    day = models.DateField()
    exits = models.IntegerField(default=0, help_text="Exits that day")
    exits_net = money_field(default=Decimal(0), help_text="Their realized P&L less fees")
    exits_fees = money_field(default=Decimal(0))
    num_trades = models.IntegerField(default=0, help_text="Trades closed that day")
    num_winning_trades = models.IntegerField(default=0)
    num_losing_trades = models.IntegerField(default=0)
    gross_profit = money_field(default=Decimal(0), help_text="Sum of the winners' net results")
    gross_loss = money_field(default=Decimal(0), help_text="Sum of the losers' (negative)")
    trades_fees = money_field(default=Decimal(0), help_text="The closed trades' fees")
    first_entry = models.DateTimeField(help_text="Earliest entry of the trades exited that day")

    class Meta:
        db_table = "strategy_pnl_days"
        constraints = [
            models.UniqueConstraint(
                fields=["strategy", "day", "instrument"], name="uq_strategy_pnl_days"
            ),
        ]

    def __str__(self):
        return f"strategy {self.strategy_id} on conid {self.instrument_id}, {self.day}"


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
        return f"{plain(self.quantity)} {instrument_name(self)} @ {price_text(self.average_cost)}"


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


class TradingActionKind(models.TextChoices):
    CLOSE_POSITION = "close_position", "Close position"
    CANCEL_ORDER = "cancel_order", "Cancel order"
    KILL_SWITCH = "kill_switch", "Kill switch"
    RESUME = "resume", "Resume trading"


class TradingAction(models.Model):
    """Our own table: every use of the trader's controls (close a position, cancel an order,
    the kill switch and its resume), with who and when. Trading is halted while the newest
    kill switch has no resume after it."""

    kind = models.CharField(max_length=16, choices=TradingActionKind.choices)
    user = models.CharField(
        max_length=150, null=True, blank=True, help_text="Who used it (empty: the system)"
    )
    order = models.ForeignKey(
        Order, null=True, blank=True, on_delete=models.PROTECT, related_name="actions"
    )
    position = models.ForeignKey(
        Position, null=True, blank=True, on_delete=models.SET_NULL, related_name="actions"
    )
    flatten = models.BooleanField(
        default=False, help_text="Kill switch: every open position was closed too"
    )
    detail = models.TextField(blank=True, default="", help_text="What it did")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "trading_actions"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["kind", "created_at"], name="ix_trading_actions_kind")]
        constraints = [choices_check("kind", TradingActionKind, "trading_actions")]

    def __str__(self):
        who = self.user or "the system"
        return f"{self.get_kind_display()} by {who} at {self.created_at:%Y-%m-%d %H:%M} UTC"


class TradingMode(models.TextChoices):
    # labels as the values: the API's trading_mode of every row says "paper" / "live" too
    PAPER = "paper", "paper"
    LIVE = "live", "live"


class TradingSession(models.Model):
    """Seed 003's trading session: a stretch of trading in one mode, with its figures computed
    from the fills and exits within it (``orders.services.trading_session_refresh``). One
    active session per trading mode."""

    session_name = models.CharField(max_length=100)
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    total_trades = models.IntegerField(default=0, help_text="Trades with an exit in the session")
    winning_trades = models.IntegerField(default=0)
    losing_trades = models.IntegerField(default=0)
    total_pnl = models.DecimalField(
        "total P&L", max_digits=12, decimal_places=2, default=Decimal(0),
        help_text="The session's exits' realized P&L, net of their fees",
    )  # fmt: skip
    total_commission = models.DecimalField(
        max_digits=10, decimal_places=2, default=Decimal(0),
        help_text="IB's commissions on the session's fills",
    )  # fmt: skip
    win_rate = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True,
        help_text="Winning trades / trades x 100",
    )  # fmt: skip
    starting_balance = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    ending_balance = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True,
        help_text="Starting balance + total P&L",
    )  # fmt: skip
    max_drawdown = models.DecimalField(
        max_digits=8, decimal_places=4, null=True, blank=True,
        help_text="Largest fall of the balance from an earlier peak, in percent of the peak",
    )  # fmt: skip
    is_active = models.BooleanField(default=True, db_index=True)
    broker = models.CharField(max_length=50, default="ibkr")
    trading_mode = models.CharField(max_length=20, choices=TradingMode.choices)
    notes = models.TextField(blank=True, default="")

    class Meta:
        db_table = "trading_sessions"
        ordering = ["-started_at", "-id"]
        constraints = [
            choices_check("trading_mode", TradingMode, "trading_sessions"),
            models.UniqueConstraint(
                fields=["trading_mode"],
                condition=models.Q(is_active=True),
                name="uq_trading_sessions_one_active_per_mode",
            ),
        ]

    def __str__(self):
        state = "active" if self.is_active else "ended"
        return f"{self.session_name} ({self.trading_mode}, {state})"
