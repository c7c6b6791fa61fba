from rest_framework import serializers

from marketdata.models import Code
from strategies.models import Decision, Strategy
from strategies.schedules import MAX_INTERVAL_MINUTES
from tradingsite.api.fields import JSONObjectField
from tradingsite.api.serializers import DecimalField, ModelSerializer
from workflows.models import Workflow


class StrategySerializer(ModelSerializer):
    workflow_id = serializers.PrimaryKeyRelatedField(
        source="workflow",
        queryset=Workflow.objects.all(),
        allow_null=True,
        required=False,
        help_text="The workflow it runs; null runs the legacy template of its type.",
    )
    codes = serializers.PrimaryKeyRelatedField(
        many=True,
        queryset=Code.objects.all(),
        required=False,
        help_text="Code ids it trades: at least one (none, or left out on create, is a 400).",
    )
    param = JSONObjectField(
        required=False, help_text="Overrides of the workflow's default_params (period_1, ...)."
    )
    schedule_interval_minutes = serializers.IntegerField(
        min_value=1, max_value=MAX_INTERVAL_MINUTES, allow_null=True, required=False
    )

    class Meta:
        model = Strategy
        fields = [
            "id", "name", "type", "param", "workflow_id", "codes", "active",
            "schedule_interval_minutes", "schedule_crontab", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["id", "created_at", "updated_at"]
        extra_kwargs = {
            "type": {"required": False, "help_text": "Follows the workflow's type: leave it out "
                     "(a different one is refused); without a workflow, the legacy template's."},
        }  # fmt: skip


class DecisionSerializer(ModelSerializer):
    code_id = serializers.IntegerField(read_only=True)
    strategy_id = serializers.IntegerField(read_only=True)
    workflow_execution_id = serializers.IntegerField(read_only=True, allow_null=True)
    reward_risk = DecimalField(
        max_digits=18, decimal_places=6, read_only=True, allow_null=True,
        help_text="Reward-to-risk, -r_coefficient: positive for a sound trade (2.000000 is "
                  "a target twice as far as the stop); null without a target or a stop",
    )  # fmt: skip

    class Meta:
        model = Decision
        fields = [
            "id", "code_id", "strategy_id", "type", "current_price", "price_at",
            "proposed_price", "target_price", "stop_loss", "profit_margin", "r_coefficient",
            "reward_risk", "analysis_text", "created_at", "workflow_execution_id", "status",
            "error_message", "confidence", "llm_model", "execution_time_ms",
        ]  # fmt: skip
        read_only_fields = fields
