from celery.schedules import ParseException
from rest_framework import serializers

from marketdata.models import Code
from strategies.models import Decision, Strategy
from strategies.schedules import crontab_fields
from tradingsite.api.fields import JSONObjectField
from tradingsite.api.serializers import ModelSerializer
from tradingsite.exceptions import ApplicationError
from workflows.models import Workflow

# A PeriodicTask expires a run after its interval (in seconds, a 32-bit column): a year is
# more than any strategy needs and keeps that number in range.
MAX_INTERVAL_MINUTES = 525_600


class StrategySerializer(ModelSerializer):
    workflow_id = serializers.PrimaryKeyRelatedField(
        source="workflow",
        queryset=Workflow.objects.all(),
        allow_null=True,
        required=False,
        help_text="The workflow it runs; null runs the legacy template of its type.",
    )
    codes = serializers.PrimaryKeyRelatedField(
        many=True, queryset=Code.objects.all(), required=False, help_text="Code ids it trades."
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

    def validate_schedule_crontab(self, value):
        # Trap: celery's parser raises ParseException, not ValueError, for "-1 * * * *" or
        # "1,,2 * * * *", and schedule_check lets it through; the service words the rest.
        try:
            crontab_fields(value)
        except ParseException as exc:
            raise serializers.ValidationError(f"Not a valid crontab: {exc}.") from None
        except ApplicationError:
            pass
        return value


class DecisionSerializer(ModelSerializer):
    code_id = serializers.IntegerField(read_only=True)
    strategy_id = serializers.IntegerField(read_only=True)
    workflow_execution_id = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = Decision
        fields = [
            "id", "code_id", "strategy_id", "type", "current_price", "target_price", "stop_loss",
            "profit_margin", "r_coefficient", "analysis_text", "created_at",
            "workflow_execution_id",
        ]  # fmt: skip
        read_only_fields = fields
