from django.contrib import admin, messages

from tradingsite.admin_forms import ServiceCheckedForm
from tradingsite.exceptions import ApplicationError

from .models import Decision, Strategy, StrategyCode
from .schedules import schedule_check, strategy_schedule_sync
from .services import params_check, strategy_delete


class StrategyForm(ServiceCheckedForm):
    class Meta:
        model = Strategy
        fields = (
            "name", "type", "workflow", "param", "active", "schedule_interval_minutes",
            "schedule_crontab",
        )  # fmt: skip

    def check(self, data):
        if "type" in data and "param" in data:
            params_check(type=data["type"], param=data["param"], workflow=data.get("workflow"))
        schedule_check(
            interval_minutes=data.get("schedule_interval_minutes"),
            crontab=data.get("schedule_crontab"),
        )


class StrategyCodeInline(admin.TabularInline):
    model = StrategyCode
    extra = 1
    autocomplete_fields = ("code",)


@admin.register(Strategy)
class StrategyAdmin(admin.ModelAdmin):
    list_display = ("name", "type", "workflow", "active", "updated_at")
    list_filter = ("type", "active", "workflow")
    list_select_related = ("workflow",)
    search_fields = ("name",)
    inlines = [StrategyCodeInline]
    form = StrategyForm

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # The schedule follows the saved strategy into beat.
        strategy_schedule_sync(strategy=form.instance)

    def delete_model(self, request, obj):
        try:
            strategy_delete(strategy=obj)
        except ApplicationError as refused:
            self.message_user(request, str(refused), messages.ERROR)


@admin.register(Decision)
class DecisionAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "code",
        "strategy",
        "type",
        "current_price",
        "target_price",
        "stop_loss",
        "r_coefficient",
        "profit_margin",
    )
    list_filter = ("type", "strategy")
    list_select_related = ("code", "strategy")
    search_fields = ("code__symbol",)
    date_hierarchy = "created_at"
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
