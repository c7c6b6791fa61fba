from django.db import models
from django.utils import timezone

from tradingsite.fields import choices_check, price_field, ratio_field
from tradingsite.money import price_text


class StrategyType(models.TextChoices):
    TWO_INDICATOR = "two_indicator", "Two indicator (daily + weekly)"
    THREE_INDICATOR = "three_indicator", "Three indicator (daily + weekly + monthly)"
    AUTOGEN_MULTI_AGENT = "autogen_multi_agent", "AutoGen multi-agent"
    CUSTOM = "custom", "Custom"


class Strategy(models.Model):
    """A trading strategy: which codes it trades, with which workflow and parameters.

    ``workflow`` NULL means the legacy inline workflow of the strategy's ``type``.
    """

    name = models.CharField(max_length=200)
    type = models.CharField(max_length=32, choices=StrategyType.choices)
    param = models.JSONField(default=dict, blank=True)
    workflow = models.ForeignKey(
        "workflows.Workflow",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="strategies",
    )
    codes = models.ManyToManyField(
        "marketdata.Code", through="StrategyCode", related_name="strategies", blank=True
    )
    active = models.BooleanField(default=True, help_text="Inactive strategies are not scheduled")
    schedule_interval_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Run every N minutes (leave empty for no interval)"
    )
    schedule_crontab = models.CharField(
        max_length=100,
        blank=True,
        default="",
        help_text='Or a crontab in UTC: "minute hour day-of-month month day-of-week"',
    )
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask",
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "strategy"
        verbose_name_plural = "strategies"
        ordering = ["name"]

    def __str__(self):
        return self.name


class StrategyCode(models.Model):
    """A code traded by a strategy (table ``strategy_codes``)."""

    strategy = models.ForeignKey(Strategy, on_delete=models.CASCADE)
    code = models.ForeignKey("marketdata.Code", on_delete=models.CASCADE)

    class Meta:
        db_table = "strategy_codes"
        constraints = [
            models.UniqueConstraint(
                fields=["strategy", "code"], name="uq_strategy_codes_strategy_code"
            ),
        ]

    def __str__(self):
        return self.code.symbol


class DecisionType(models.TextChoices):
    BUY = "buy", "Buy"
    SELL = "sell", "Sell"
    HOLD = "hold", "Hold"


class DecisionStatus(models.TextChoices):
    """Seed 002's audit of how a decision came about."""

    SUCCESS = "success", "Success"
    FAILED = "failed", "Failed (the model could not be asked)"
    PARSING_ERROR = "parsing_error", "Parsing error (the model's reply was unusable)"


class Decision(models.Model):
    """A buy / sell / hold recommendation, with the ratios computed by ``decision_record``.

    A decision the model did not make (its reply could not be parsed, or it could not be
    asked) is kept too, as a hold with its ``status`` and ``error_message``: no order follows
    it, and the audit shows what went wrong."""

    code = models.ForeignKey(
        "marketdata.Code", on_delete=models.PROTECT, db_index=False, related_name="decisions"
    )
    strategy = models.ForeignKey(
        Strategy, on_delete=models.PROTECT, db_index=False, related_name="decisions"
    )
    type = models.CharField(max_length=8, choices=DecisionType.choices)
    current_price = price_field(
        help_text="The price decided at: IB's live price for a run's buy or sell, which is "
        "the order's limit"
    )
    price_at = models.DateTimeField(
        "price taken at",
        null=True,
        blank=True,
        help_text="When IB gave the current price; empty for a price from the bars (a hold)",
    )
    proposed_price = price_field(
        null=True, blank=True, help_text="The price the model proposed, from the bars it saw"
    )
    target_price = price_field(null=True, blank=True)
    stop_loss = price_field(null=True, blank=True)
    profit_margin = ratio_field(null=True, blank=True)
    r_coefficient = ratio_field(null=True, blank=True)
    analysis_text = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    workflow_execution = models.ForeignKey(
        "workflows.WorkflowExecution",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="decisions",
        help_text="The run that made this decision (none for decisions made elsewhere)",
    )
    # Seed 002's audit columns (agent_decisions).
    status = models.CharField(
        max_length=20, choices=DecisionStatus.choices, default=DecisionStatus.SUCCESS
    )
    error_message = models.TextField(
        null=True, blank=True, help_text="Why the model's reply was not a decision"
    )
    confidence = models.DecimalField(
        max_digits=3, decimal_places=2, null=True, blank=True,
        help_text="The model's confidence, 0.00 to 1.00 (none from the indicator rules)",
    )  # fmt: skip
    execution_time_ms = models.IntegerField(
        "model time (ms)", null=True, blank=True,
        help_text="How long the model took to decide (all its calls), in milliseconds",
    )  # fmt: skip
    llm_model = models.CharField(
        "model", max_length=100, blank=True, default="",
        help_text="The language model that decided (empty: the indicator rules)",
    )  # fmt: skip

    class Meta:
        db_table = "decision"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["code"], name="ix_decision_code_id"),
            models.Index(fields=["strategy"], name="ix_decision_strategy_id"),
            models.Index(fields=["created_at"], name="ix_decision_created_at"),
            models.Index(fields=["status"], name="ix_decision_status"),
        ]
        constraints = [
            choices_check("type", DecisionType, "decision"),
            choices_check("status", DecisionStatus, "decision"),
            models.CheckConstraint(
                condition=models.Q(confidence__gte=0, confidence__lte=1)
                | models.Q(confidence__isnull=True),
                name="ck_decision_confidence",
            ),
            models.CheckConstraint(
                condition=models.Q(execution_time_ms__gte=0)
                | models.Q(execution_time_ms__isnull=True),
                name="ck_decision_execution_time_ms",
            ),
        ]

    def __str__(self):
        return f"Decision #{self.pk}: {self.summary}"

    @property
    def summary(self):
        """ "buy AAPL @ 101.50": the decision where its id is said already (a run's list)."""
        return f"{self.type} {self.code.symbol} @ {price_text(self.current_price, code=self.code)}"
