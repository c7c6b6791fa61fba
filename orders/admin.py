from functools import partial
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.urls import path, reverse

from marketdata.models import Code
from strategies.models import Decision, Strategy
from tradingsite.admin_tools import (
    FormattedNumbersMixin,
    ReadOnlyAdmin,
    change_url,
    changelist_url,
    link,
    short_link,
)
from tradingsite.money import quantity_text
from workflows.models import WorkflowExecution

from .admin_new_order import new_order_view
from .models import Order, Position, Trade, TradeExit
from .selectors import instrument_code


class BrokerOwnedAdmin(FormattedNumbersMixin, ReadOnlyAdmin):
    """The broker owns the truth of these rows: the admin shows them and never edits them.

    Every screen names the trading mode (templates/admin/orders/ add a banner; titles too).
    """

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(symbol=instrument_code("symbol"), code_pk=instrument_code("pk"))
        )

    def _mode_title(self, extra_context, title):
        return {**(extra_context or {}), "title": f"{title} ({settings.TRADING_MODE} trading)"}

    def changelist_view(self, request, extra_context=None):
        title = self.opts.verbose_name_plural.capitalize()
        return super().changelist_view(request, self._mode_title(extra_context, title))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        title = f"{self.opts.verbose_name.capitalize()} {object_id}"
        return super().change_view(
            request, object_id, form_url, self._mode_title(extra_context, title)
        )

    @admin.display(description="instrument", ordering="symbol")
    def instrument_link(self, row):
        if row.code_pk is None:
            return f"conid {row.instrument_id} (no code stored)"
        return short_link(change_url(Code, row.code_pk), f"{row.symbol} ({row.instrument_id})")


class StrategyFilter(admin.SimpleListFilter):
    """The orders of one strategy's decisions: where a strategy's page links to. It lists only
    the chosen strategy, so the list does not read every strategy to offer them all."""

    title = "strategy"
    parameter_name = "strategy"

    def lookups(self, request, model_admin):
        chosen = self.value()
        if not (chosen and chosen.isdigit()):
            return ()
        return Strategy.objects.filter(pk=chosen).values_list("pk", "name")

    def queryset(self, request, queryset):
        return queryset.filter(decision__strategy=self.value()) if self.value() else queryset


@admin.register(Order)
class OrderAdmin(BrokerOwnedAdmin):
    number_formats = {
        "quantity": "quantity", "price": "price", "filled_quantity": "quantity",
        "avg_fill_price": "price",
    }  # fmt: skip
    # TIF, filled quantity, IB's order id and the decision are on the order's page.
    list_display = (
        "id", "created_at", "instrument_link", "side", "quantity", "order_type", "price",
        "status", "avg_fill_price", "trades_link",
    )  # fmt: skip
    list_display_links = ("id", "created_at")
    list_filter = ("status", "side", "order_type", "tif", StrategyFilter)
    search_fields = ("^instrument__symbol",)
    search_help_text = "Search by symbol (its first letters) or IB order id (a number)"
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")  # the ix_orders_created_at index, read backwards
    readonly_fields = (
        "instrument_link", "decision_link", "strategy_link", "execution_link", "trades_link",
    )  # fmt: skip
    fields = (
        "instrument_link", "side", "quantity", "order_type", "price", "tif", "status",
        "filled_quantity", "avg_fill_price", "ibkr_order_id", "error_message", "decision_link",
        "strategy_link", "execution_link", "trades_link", "created_at", "submitted_at",
        "filled_at", "canceled_at", "updated_at",
    )  # fmt: skip

    def get_urls(self):
        new = path("new/", self.admin_site.admin_view(partial(new_order_view, self)),
                   name="orders_order_new")  # fmt: skip
        return [new, *super().get_urls()]

    def get_search_results(self, request, queryset, search_term):
        # A number is an IB order id: one index look-up, where an OR with the symbol's
        # condition would read the whole table.
        term = search_term.strip()
        if term.isdigit() and len(term) < 10:
            return queryset.filter(ibkr_order_id=int(term)), False
        return super().get_search_results(request, queryset, search_term)

    def get_queryset(self, request):
        trades = (
            Trade.objects.filter(order=OuterRef("pk"))
            .order_by()
            .values("order")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return super().get_queryset(request).annotate(trade_count=Coalesce(Subquery(trades), 0))

    @admin.display(description="decision")
    def decision_link(self, order):
        if order.decision_id is None:
            return "-"
        return link(change_url(Decision, order.decision_id), f"decision #{order.decision_id}")

    @admin.display(description="strategy")
    def strategy_link(self, order):
        if order.decision_id is None:
            return "- (a manual order)"
        strategy = order.decision.strategy
        return link(change_url(strategy), strategy.name)

    @admin.display(description="made by execution")
    def execution_link(self, order):
        if order.decision_id is None or order.decision.workflow_execution_id is None:
            return "-"
        execution_id = order.decision.workflow_execution_id
        return link(change_url(WorkflowExecution, execution_id), f"execution #{execution_id}")

    @admin.display(description="trades")
    def trades_link(self, order):
        if not order.trade_count:
            return "none"
        return link(changelist_url(Trade, order__id__exact=order.pk), f"{order.trade_count} trades")


class TradeExitInline(FormattedNumbersMixin, admin.TabularInline):
    """Each closing fill's part of the trade and the P&L it realized that day."""

    model = TradeExit
    number_formats = {"quantity": "quantity", "price": "price", "realized_pnl": "pnl",
                      "fees": "money"}  # fmt: skip
    fields = readonly_fields = ("exited_at", "quantity", "price", "realized_pnl", "fees")
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Trade)
class TradeAdmin(BrokerOwnedAdmin):
    number_formats = {
        "entry_price": "price", "entry_quantity": "quantity", "exit_price": "price",
        "exit_quantity": "quantity", "realized_pnl": "pnl", "fees": "money",
    }  # fmt: skip
    inlines = [TradeExitInline]
    list_display = (
        "id", "entry_date", "instrument_link", "order_link", "entry_price", "entry_quantity",
        "exit_price", "exit_quantity", "exit_date", "realized_pnl", "fees",
    )  # fmt: skip
    list_display_links = ("id", "entry_date")
    search_fields = ("^instrument__symbol",)
    search_help_text = "Search by symbol"
    date_hierarchy = "entry_date"
    ordering = ("-id",)  # the primary key's index (ids grow with entry)
    readonly_fields = ("instrument_link", "order_link")
    fields = (
        "instrument_link", "order_link", "entry_price", "entry_quantity", "entry_date",
        "exit_price", "exit_quantity", "exit_date", "realized_pnl", "fees", "created_at",
        "updated_at",
    )  # fmt: skip

    @admin.display(description="order")
    def order_link(self, trade):
        return link(change_url(Order, trade.order_id), f"order #{trade.order_id}")


class OpenFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return (("open", "Open"), ("closed", "Closed"))

    def queryset(self, request, queryset):
        if self.value() in ("open", "closed"):
            return queryset.filter(closed_at__isnull=self.value() == "open")
        return queryset


@admin.register(Position)
class PositionAdmin(BrokerOwnedAdmin):
    number_formats = {
        "quantity": "quantity", "average_cost": "price", "current_price": "price",
        "unrealized_pnl": "pnl",
    }  # fmt: skip
    list_display = (
        "instrument_link", "side", "quantity", "average_cost", "current_price", "unrealized_pnl",
        "updated_at", "closed_at", "trades_link",
    )  # fmt: skip
    list_filter = (OpenFilter,)
    search_fields = ("^instrument__symbol",)
    search_help_text = "Search by symbol"
    ordering = ("-updated_at", "-id")
    readonly_fields = ("instrument_link", "side", "trades_link", "close_link")
    fields = (
        "instrument_link", "side", "quantity", "average_cost", "current_price", "unrealized_pnl",
        "updated_at", "closed_at", "trades_link", "close_link",
    )  # fmt: skip

    @admin.display(description="close it")
    def close_link(self, position):
        """The New order form filled in with the opposite market order of the whole holding."""
        if position.closed_at is not None or not position.quantity:
            return "-"
        side = "SELL" if position.quantity > 0 else "BUY"
        quantity = quantity_text(abs(position.quantity)).replace(",", "")
        query = urlencode({"code": position.instrument_id, "side": side, "quantity": quantity,
                           "order_type": "MKT", "tif": "DAY"})  # fmt: skip
        return link(f"{reverse('admin:orders_order_new')}?{query}",
                    f"New order: {side} {quantity} at the market")  # fmt: skip

    @admin.display(description="side")
    def side(self, position):
        return "long" if position.quantity > 0 else "short" if position.quantity < 0 else "flat"

    @admin.display(description="trades")
    def trades_link(self, position):
        return link(
            changelist_url(Trade, instrument__exact=position.instrument_id),
            f"trades in {position.symbol or position.instrument_id}",
        )
