from rest_framework import serializers

from strategies.models import Strategy
from tradingsite.api.fields import JSONListField, JSONObjectField
from tradingsite.api.serializers import ModelSerializer
from workflows.models import (
    AgentConversation,
    StrategyProbeResult,
    StrategyProbeTrade,
    Workflow,
    WorkflowExecution,
    WorkflowMetrics,
    WorkflowVersion,
)
from workflows.services import BACKTEST_COMMISSIONS


class WorkflowSerializer(ModelSerializer):
    steps = JSONListField(
        required=False, help_text='The steps, each {"type": ..., "config": {...}}, run in order.'
    )
    default_params = JSONObjectField(
        required=False, help_text="Parameters a strategy inherits unless its param overrides."
    )
    current_version_id = serializers.IntegerField(read_only=True, allow_null=True)
    current_version_number = serializers.IntegerField(read_only=True, allow_null=True)
    pause_strategies = serializers.BooleanField(
        write_only=True, required=False,
        help_text="A change that a strategy using the workflow could not run with is refused, "
                  "naming each (400, `strategies`); true saves it and pauses those strategies.",
    )  # fmt: skip

    class Meta:
        model = Workflow
        fields = [
            "id", "name", "type", "steps", "default_params", "description",
            "current_version_id", "current_version_number", "created_at", "updated_at",
            "pause_strategies",
        ]  # fmt: skip
        read_only_fields = ["id", "created_at", "updated_at"]


class WorkflowVersionSerializer(ModelSerializer):
    workflow_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = WorkflowVersion
        fields = [
            "id",
            "workflow_id",
            "version_number",
            "steps",
            "created_at",
            "created_by",
            "note",
        ]
        read_only_fields = fields


class WorkflowRevertSerializer(serializers.Serializer):
    version_number = serializers.IntegerField(
        min_value=1, max_value=2**31 - 1, help_text="The version whose steps become the next one."
    )


class ExecutionSerializer(ModelSerializer):
    workflow_id = serializers.IntegerField(read_only=True, allow_null=True)
    strategy_id = serializers.IntegerField(read_only=True)
    partial = serializers.BooleanField(
        read_only=True, help_text="Completed, but some codes failed (see failed_codes)"
    )
    failed_codes = serializers.DictField(
        child=serializers.CharField(), read_only=True,
        help_text="Each code that failed in this run, and why",
    )  # fmt: skip

    class Meta:
        model = WorkflowExecution
        fields = [
            "id", "workflow_id", "strategy_id", "task_id", "status", "partial", "failed_codes",
            "started_at", "completed_at", "results", "error_message", "progress", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class AgentMessageSerializer(ModelSerializer):
    workflow_execution_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = AgentConversation
        fields = [
            "id", "workflow_execution_id", "agent_name", "message_type", "message_content",
            "timestamp", "tokens_used", "llm_model",
        ]  # fmt: skip
        read_only_fields = fields


class WorkflowMetricsSerializer(ModelSerializer):
    workflow_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = WorkflowMetrics
        fields = ["id", "workflow_id", "date", "metrics"]
        read_only_fields = fields


class AgentPerformanceSerializer(serializers.Serializer):
    agent_name = serializers.CharField()
    total_messages = serializers.IntegerField()
    average_tokens = serializers.FloatField(
        allow_null=True, help_text="Mean tokens_used of the agent's messages that report it."
    )
    decisions_influenced = serializers.IntegerField(
        help_text="Distinct decisions recorded by the executions the agent spoke in."
    )


class RunSerializer(serializers.Serializer):
    """What a run may ask for: a dry run decides but sends no order."""

    dry_run = serializers.BooleanField(
        default=False, help_text="Decide, but send no order to the broker."
    )


class WorkflowRunSerializer(RunSerializer):
    strategy_id = serializers.PrimaryKeyRelatedField(
        source="strategy",
        queryset=Strategy.objects.all(),
        help_text="The strategy whose codes and param the workflow runs with.",
    )


class ExecutionStartedSerializer(serializers.Serializer):
    """A run that was queued: follow it at ``/api/executions/{execution_id}/``."""

    execution_id = serializers.IntegerField(source="pk")
    task_id = serializers.CharField(help_text="The Celery task that runs it.")
    status = serializers.CharField(help_text="pending until a worker picks it up.")


class AgentUsageSerializer(serializers.Serializer):
    """The tokens one model used on one day (UTC)."""

    day = serializers.DateField()
    llm_model = serializers.CharField(help_text="The model; offline for the offline rules")
    messages = serializers.IntegerField(help_text="Messages that report their tokens")
    tokens_used = serializers.IntegerField()


class AgentUsageQuerySerializer(serializers.Serializer):
    since = serializers.DateField(required=False, help_text="First day (UTC), included")
    until = serializers.DateField(required=False, help_text="Last day (UTC), included")

    def validate(self, attrs):
        if "since" in attrs and "until" in attrs and attrs["since"] > attrs["until"]:
            raise serializers.ValidationError({"until": "Must not be before since."})
        return attrs


class BacktestRequestSerializer(serializers.Serializer):
    """A backtest's period and settings (``from`` and ``to`` are days, UTC)."""

    commission = serializers.ChoiceField(choices=BACKTEST_COMMISSIONS, default="ib_fixed")
    # The settings' rules (slippage from 0 to 1000 bps, the period's order) are the service's
    # (workflows.services.backtest_settings).
    slippage_bps = serializers.DecimalField(max_digits=7, decimal_places=2, default=0)
    allow_short = serializers.BooleanField(default=False)
    brackets = serializers.BooleanField(
        default=True, help_text="work each entry's take-profit and stop (false: the entry alone)"
    )
    replay = serializers.CharField(
        max_length=50, required=False, allow_null=True, default=None,
        help_text="a backtest's run id: its agents' recorded replies answer, not a model",
    )  # fmt: skip

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.DateField(help_text="first day, YYYY-MM-DD")
        fields["to"] = serializers.DateField(help_text="last day, YYYY-MM-DD")
        return fields


class BacktestStartedSerializer(serializers.Serializer):
    task_id = serializers.CharField()
    status_url = serializers.CharField()


class BacktestTaskSerializer(serializers.Serializer):
    task_id = serializers.CharField()
    state = serializers.CharField(help_text="PENDING, PROGRESS, SUCCESS or FAILURE")
    progress = serializers.DictField(allow_null=True)
    run_id = serializers.CharField(allow_null=True)
    error = serializers.CharField(allow_null=True)


class ProbeTradeSerializer(ModelSerializer):
    class Meta:
        model = StrategyProbeTrade
        fields = [
            "id", "result_id", "symbol", "side", "entry_time", "exit_time", "entry_price",
            "exit_price", "quantity", "pnl", "return_pct", "exit_reason", "metrics",
            "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class ProbeResultSerializer(ModelSerializer):
    class Meta:
        model = StrategyProbeResult
        fields = [
            "id", "run_id", "symbol", "strategy_id", "period_start", "period_end", "open_day",
            "total_trades", "win_rate", "profit_factor", "total_pnl", "max_drawdown",
            "sharpe_ratio", "metrics", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class ProbeResultDetailSerializer(ProbeResultSerializer):
    trades = ProbeTradeSerializer(many=True, read_only=True)

    class Meta(ProbeResultSerializer.Meta):
        fields = [*ProbeResultSerializer.Meta.fields, "trades"]
        read_only_fields = fields
