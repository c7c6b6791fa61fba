from django.contrib import admin

from .models import Code, MarketData


@admin.register(Code)
class CodeAdmin(admin.ModelAdmin):
    list_display = ("symbol", "conid", "exchange", "updated_at")
    search_fields = ("symbol", "=conid")
    list_filter = ("exchange",)


@admin.register(MarketData)
class MarketDataAdmin(admin.ModelAdmin):
    list_display = ("conid", "period", "bar", "created_at")
    list_filter = ("period", "bar")
    search_fields = ("=conid",)
    date_hierarchy = "created_at"
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
