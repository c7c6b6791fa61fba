from django.contrib import admin

from .models import Decision, Strategy, StrategyCode


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
