from django.db import models
from django.utils import timezone

from tradingsite.fields import choices_check


class WorkflowType(models.TextChoices):
    TWO_INDICATOR = "two_indicator", "Two indicator"
    THREE_INDICATOR = "three_indicator", "Three indicator"
    AUTOGEN_MULTI_AGENT = "autogen_multi_agent", "AutoGen multi-agent"
    CUSTOM = "custom", "Custom"


class Workflow(models.Model):
    """A reusable list of steps; strategies point at one and override its default params."""

    name = models.CharField(max_length=200)
    type = models.CharField(
        max_length=32, choices=WorkflowType.choices, default=WorkflowType.CUSTOM
    )
    steps = models.JSONField(default=list, blank=True)
    default_params = models.JSONField(default=dict, blank=True)
    description = models.TextField(blank=True, default="")
    current_version = models.ForeignKey(
        "WorkflowVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "workflow"
        ordering = ["name"]
        constraints = [choices_check("type", WorkflowType, "workflow")]

    def __str__(self):
        return self.name


class WorkflowVersion(models.Model):
    """A saved copy of a workflow's steps; every change of steps writes the next one."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="versions")
    version_number = models.IntegerField()
    steps = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.CharField(max_length=150, null=True, blank=True)
    note = models.TextField(blank=True, default="")

    class Meta:
        db_table = "workflow_versions"
        ordering = ["workflow", "-version_number"]
        constraints = [
            models.UniqueConstraint(
                fields=["workflow", "version_number"], name="uq_workflow_versions_number"
            ),
        ]

    def __str__(self):
        return f"{self.workflow_id} v{self.version_number}"


class ExecutionStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class WorkflowExecution(models.Model):
    """One run of a strategy's workflow, as a Celery task."""

    workflow = models.ForeignKey(
        Workflow, null=True, blank=True, on_delete=models.PROTECT, related_name="executions"
    )
    strategy = models.ForeignKey(
        "strategies.Strategy", on_delete=models.PROTECT, related_name="executions"
    )
    task_id = models.CharField(max_length=255, null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=ExecutionStatus.choices, default=ExecutionStatus.PENDING
    )
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    results = models.JSONField(default=dict, blank=True)
    error_message = models.TextField(null=True, blank=True)
    progress = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "workflow_execution"
        ordering = ["-id"]
        constraints = [
            choices_check("status", ExecutionStatus, "workflow_execution"),
            # Our own: one execution per Celery task, so a redelivered task finds its run.
            models.UniqueConstraint(fields=["task_id"], name="workflow_execution_task_id_key"),
        ]
        # Our own (not in the seeds): the dashboard's "executions today" and date filters.
        indexes = [models.Index(fields=["created_at"], name="ix_workflow_execution_created")]

    def __str__(self):
        return f"execution {self.pk} ({self.status})"

    @property
    def failed_codes(self):
        """{symbol: why} of the codes that failed in this run (its results' ``failures``)."""
        failures = (self.results or {}).get("failures")
        return failures if isinstance(failures, dict) else {}

    @property
    def partial(self):
        """Completed, but some of its codes failed (``failed_codes`` says which and why)."""
        return self.status == "completed" and bool(self.failed_codes)

    def progress_shown(self):
        """``(percent, text)``: the progress of a run as a person reads it."""
        progress = self.progress or {}
        if self.status == ExecutionStatus.PENDING:
            return 0, "Queued: waiting for a worker"
        if self.status == ExecutionStatus.COMPLETED:
            failed = (self.results or {}).get("failed_symbols") or []
            if not failed:
                return 100, "Completed"
            total = progress.get("total_symbols", "?")
            return 100, f"Completed; {len(failed)} of {total} codes failed: {', '.join(failed)}"
        percent = progress.get("percent", 0) if isinstance(progress.get("percent"), int) else 0
        if "current_step" not in progress:
            return percent, self.get_status_display()
        done, total = progress.get("completed_symbols", 0), progress.get("total_symbols", "?")
        text = (
            f"Step {progress['current_step']} of {progress.get('total_steps', '?')} "
            f"({progress.get('step_type', '?')}) on {progress.get('current_symbol', '?')}, "
            f"{done} of {total} codes done"
        )
        if self.status != ExecutionStatus.RUNNING:
            text = f"{self.get_status_display()} at: {text}"
        return percent, text


class MessageType(models.TextChoices):
    REQUEST = "request", "Request"
    RESPONSE = "response", "Response"


class AgentConversation(models.Model):
    """One message of the AutoGen team's conversation during an execution."""

    workflow_execution = models.ForeignKey(
        WorkflowExecution, on_delete=models.CASCADE, related_name="conversation"
    )
    agent_name = models.CharField(max_length=100)
    message_type = models.CharField(max_length=16, choices=MessageType.choices)
    message_content = models.TextField()
    timestamp = models.DateTimeField(default=timezone.now)
    tokens_used = models.IntegerField(null=True, blank=True)
    # Our own (not in the seeds): which model spoke, so that usage is summed per model.
    llm_model = models.CharField("model", max_length=100, blank=True, default="")

    class Meta:
        db_table = "agent_conversations"
        ordering = ["timestamp", "id"]
        indexes = [
            models.Index(
                fields=["workflow_execution", "timestamp"], name="agent_conv_execution_time_idx"
            ),
        ]
        constraints = [choices_check("message_type", MessageType, "agent_conversations")]

    def __str__(self):
        return f"{self.agent_name} {self.message_type} at {self.timestamp:%H:%M:%S}"


class WorkflowMetrics(models.Model):
    """A workflow's aggregate figures for one day."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="metrics")
    date = models.DateField()
    metrics = models.JSONField(default=dict)

    class Meta:
        db_table = "workflow_metrics"
        verbose_name_plural = "workflow metrics"
        ordering = ["-date"]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "date"], name="uq_workflow_metrics_day"),
        ]

    def __str__(self):
        return f"{self.workflow_id} {self.date}"


class StrategyProbeResult(models.Model):
    """One code's outcome in a backtest run (seed 004's strategy_probe_results): the run's
    strategy (our ``strategy``, seed 004's probe catalog), its statistics and, in
    ``metrics``, the return, the equity curve and the run's settings."""

    id = models.BigAutoField(primary_key=True)
    run_id = models.CharField(max_length=50, db_index=True)
    symbol = models.CharField(max_length=20)
    strategy = models.ForeignKey(
        "strategies.Strategy", on_delete=models.CASCADE, related_name="probe_results"
    )
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    open_day = models.DateField(help_text="The first trading day of the period")
    total_trades = models.IntegerField(default=0)
    win_rate = models.FloatField(null=True, blank=True, help_text="Winning trades, %")
    profit_factor = models.FloatField(null=True, blank=True)
    total_pnl = models.FloatField(default=0)
    max_drawdown = models.FloatField(null=True, blank=True, help_text="Largest fall from a peak, %")
    sharpe_ratio = models.FloatField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "strategy_probe_results"
        verbose_name = "backtest result"
        indexes = [
            models.Index(fields=["open_day"], name="ix_probe_results_open_day"),
            models.Index(fields=["strategy", "-created_at"], name="ix_probe_results_strategy"),
        ]

    def __str__(self):
        return f"{self.run_id} {self.symbol}"


class StrategyProbeTrade(models.Model):
    """One round trip of a backtest (seed 004's strategy_probe_trades)."""

    id = models.BigAutoField(primary_key=True)
    result = models.ForeignKey(StrategyProbeResult, on_delete=models.CASCADE, related_name="trades")
    symbol = models.CharField(max_length=20)
    side = models.CharField(max_length=10)
    entry_time = models.DateTimeField()
    exit_time = models.DateTimeField(null=True, blank=True)
    entry_price = models.FloatField()
    exit_price = models.FloatField(null=True, blank=True)
    quantity = models.FloatField()
    pnl = models.FloatField(null=True, blank=True)
    return_pct = models.FloatField(null=True, blank=True)
    exit_reason = models.CharField(max_length=50, blank=True, default="")
    metrics = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "strategy_probe_trades"
        verbose_name = "backtest trade"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(side__in=["long", "short"]), name="ck_probe_trades_side"
            )
        ]
        indexes = [models.Index(fields=["result", "entry_time"], name="ix_probe_trades_result")]

    def __str__(self):
        return f"{self.side} {self.quantity:g} {self.symbol} at {self.entry_price:g}"


class StrategyProbeConversation(models.Model):
    """One message of the agents' conversation in a backtest (our own table, beside seed
    004's): an ``agent_conversations`` row of a replay, of one code's result at one bar."""

    id = models.BigAutoField(primary_key=True)
    result = models.ForeignKey(
        StrategyProbeResult, on_delete=models.CASCADE, related_name="conversation"
    )
    bar_time = models.DateTimeField(help_text="The close the agents stood at, UTC")
    agent_name = models.CharField(max_length=100)
    message_type = models.CharField(max_length=16, choices=MessageType.choices)
    message_content = models.TextField()
    timestamp = models.DateTimeField(default=timezone.now)
    tokens_used = models.IntegerField(null=True, blank=True)
    llm_model = models.CharField("model", max_length=100, blank=True, default="")

    class Meta:
        db_table = "strategy_probe_conversations"
        verbose_name = "backtest agent message"
        ordering = ["bar_time", "id"]
        indexes = [
            models.Index(fields=["result", "bar_time", "id"], name="ix_probe_conv_result_bar")
        ]
        constraints = [choices_check("message_type", MessageType, "strategy_probe_conversations")]

    def __str__(self):
        return f"{self.agent_name} {self.message_type} at {self.bar_time:%Y-%m-%d %H:%M}"
