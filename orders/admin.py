from django.conf import settings
from django.contrib import admin

from .models import Order, Position, Trade


class BrokerOwnedAdmin(admin.ModelAdmin):
    """The broker owns the truth of these rows: the admin shows them and never edits them."""

    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        title = f"{self.opts.verbose_name_plural.capitalize()} ({settings.TRADING_MODE} trading)"
        extra_context = {**(extra_context or {}), "title": title}
        return super().changelist_view(request, extra_context)


@admin.register(Order)
class OrderAdmin(BrokerOwnedAdmin):
    list_display = (
        "created_at",
        "instrument",
        "side",
        "quantity",
        "order_type",
        "price",
        "tif",
        "status",
        "filled_quantity",
        "avg_fill_price",
        "ibkr_order_id",
        "decision",
    )
    list_filter = ("status", "side", "order_type", "tif")
    list_select_related = ("instrument", "decision")
    search_fields = ("instrument__symbol", "=ibkr_order_id")
    date_hierarchy = "created_at"


@admin.register(Trade)
class TradeAdmin(BrokerOwnedAdmin):
    list_display = (
        "entry_date",
        "instrument",
        "order",
        "entry_price",
        "entry_quantity",
        "exit_price",
        "exit_quantity",
        "exit_date",
        "realized_pnl",
    )
    list_select_related = ("instrument", "order")
    search_fields = ("instrument__symbol",)
    date_hierarchy = "entry_date"


@admin.register(Position)
class PositionAdmin(BrokerOwnedAdmin):
    list_display = (
        "instrument",
        "quantity",
        "average_cost",
        "current_price",
        "unrealized_pnl",
        "updated_at",
        "closed_at",
    )
    list_select_related = ("instrument",)
    search_fields = ("instrument__symbol",)
