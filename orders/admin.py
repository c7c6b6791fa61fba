from functools import partial
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html_join

from marketdata.models import Code
from strategies.models import Decision, Strategy
from tradingsite.admin_tools import (
    FormattedNumbersMixin,
    ObjectActionsMixin,
    ReadOnlyAdmin,
    change_url,
    changelist_url,
    link,
    short_link,
)
from tradingsite.broker import BrokerError
from tradingsite.exceptions import ApplicationError
from tradingsite.money import price_text, quantity_text
from workflows.models import WorkflowExecution

from .admin_new_order import new_order_view, symbol_search_view
from .models import (
    Order,
    OrderStatus,
    Position,
    Trade,
    TradeExit,
    TradingAction,
    TradingSession,
)
from .selectors import instrument_code
from .services import (
    TERMINAL_STATUSES,
    order_cancel,
    position_close,
    trading_session_end,
    trading_session_refresh,
    trading_session_start,
    trading_session_start_check,
)


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


class TraderControlsMixin(ObjectActionsMixin):
    """The trader's buttons (close a position, cancel an order) on read-only broker rows: for
    staff who may change orders, each asks for a confirmation first and is recorded."""

    change_form_template = "admin/orders/change_form.html"  # the trading mode's banner too

    def has_trade_permission(self, request):
        return request.user.is_active and request.user.has_perm("orders.change_order")

    def _each(self, request, queryset, service, verb):
        for row in queryset:
            try:
                service(row)
            except (ApplicationError, BrokerError) as refused:
                self.message_user(request, f"{row}: {refused}", messages.ERROR)
            else:
                self.message_user(request, f"{verb} {row}.")


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
class OrderAdmin(TraderControlsMixin, BrokerOwnedAdmin):
    # The order's page follows a working order (order_follow.js asks its state each second
    # and shows the page again when IB reports a change), so a fill appears by itself.
    change_form_template = "admin/orders/order/change_form.html"
    number_formats = {
        "quantity": "quantity", "price": "price", "stop_price": "price",
        "filled_quantity": "quantity", "avg_fill_price": "price",
    }  # fmt: skip
    # TIF, filled quantity, IB's order id, the decision and the trades are on the order's page;
    # the stop price is listed, so that a bracket's stop loss shows where it triggers.
    list_display = (
        "id", "created", "instrument_link", "side", "quantity", "order_type", "price",
        "stop_price", "status", "avg_fill_price",
    )  # fmt: skip
    list_display_links = ("id", "created")
    list_filter = ("status", "side", "order_type", "role", "tif", StrategyFilter)
    actions = ["cancel_order"]
    object_actions = ("cancel_order",)
    object_action_confirms = {"cancel_order": "Ask IB to cancel this order?"}
    search_fields = ("^instrument__symbol",)
    search_help_text = "Search by symbol (its first letters) or IB order id (a number)"
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")  # the ix_orders_created_at index, read backwards
    readonly_fields = (
        "instrument_link", "decision_link", "strategy_link", "execution_link", "trades_link",
        "bracket_link",
    )  # fmt: skip
    fields = (
        "instrument_link", "side", "quantity", "order_type", "price", "stop_price",
        "trailing_amount", "trailing_percent", "tif", "status", "filled_quantity",
        "avg_fill_price", "ibkr_order_id", "error_message", "role", "bracket_link",
        "oca_group", "decision_link", "strategy_link", "execution_link", "trades_link",
        "created_at", "submitted_at", "filled_at", "canceled_at", "updated_at",
    )  # fmt: skip

    class Media:
        js = ("tradingsite/order_follow.js",)

    def get_urls(self):
        new = path("new/", self.admin_site.admin_view(partial(new_order_view, self)),
                   name="orders_order_new")  # fmt: skip
        symbols = path("symbols/", self.admin_site.admin_view(partial(symbol_search_view, self)),
                       name="orders_order_symbols")  # fmt: skip
        state = path("<int:pk>/state/", self.admin_site.admin_view(self.state_view),
                     name="orders_order_state")  # fmt: skip
        return [new, symbols, state, *super().get_urls()]

    def state_view(self, request, pk):
        """An order's state as IB last reported it: what its page polls while it works."""
        order = get_object_or_404(Order, pk=pk)
        if not self.has_view_permission(request, order):
            raise Http404
        return JsonResponse({
            "id": order.pk,
            "status": order.status,
            "status_shown": order.get_status_display(),
            "filled_quantity": quantity_text(order.filled_quantity),
            "avg_fill_price": price_text(order.avg_fill_price),
            "final": order.status in TERMINAL_STATUSES,
        })  # fmt: skip

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["order_final"] = obj.status in TERMINAL_STATUSES
        return super().render_change_form(request, context, add, change, form_url, obj)

    def object_action_allowed(self, request, order, name):
        return order.status in (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED)

    @admin.action(description="Cancel at IB", permissions=["trade"])
    def cancel_order(self, request, queryset):
        self._each(request, queryset, lambda o: order_cancel(order=o, user=request.user),
                   "Asked IB to cancel")  # fmt: skip

    @admin.display(description="bracket")
    def bracket_link(self, order):
        if order.parent_order_id is not None:
            return link(change_url(Order, order.parent_order_id),
                        f"child of entry #{order.parent_order_id}")  # fmt: skip
        children = list(order.children.order_by("id").values_list("pk", "role", "status"))
        if not children:
            return "-"
        return format_html_join(
            ", ", '<a href="{}">{} #{}</a> ({})',
            ((change_url(Order, pk), role.replace("_", " "), pk, status)
             for pk, role, status in children),
        )  # fmt: skip

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

    @admin.display(description="created (UTC)", ordering="created_at")
    def created(self, order):
        """Its date and minute, as wide on any day (the list fits a laptop's screen)."""
        return f"{order.created_at:%Y-%m-%d %H:%M}"

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
class PositionAdmin(TraderControlsMixin, BrokerOwnedAdmin):
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
    actions = ["close_position"]
    object_actions = ("close_position",)
    object_action_confirms = {
        "close_position": "Close this position at market? Its stop and target are cancelled "
        "by IB as the exit fills."
    }

    def object_action_allowed(self, request, position, name):
        return position.closed_at is None and position.quantity != 0

    @admin.action(description="Close at market", permissions=["trade"])
    def close_position(self, request, queryset):
        self._each(request, queryset, lambda p: position_close(position=p, user=request.user),
                   "Sent the exit of")  # fmt: skip

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


@admin.register(TradingAction)
class TradingActionAdmin(ReadOnlyAdmin):
    """Every close, cancel, kill switch and resume: who and when."""

    list_display = ("created_at", "kind", "user", "flatten", "order", "position", "detail")
    list_filter = ("kind",)
    ordering = ("-created_at", "-id")
    date_hierarchy = "created_at"
    list_select_related = ("order", "position")
    search_fields = ("user",)


FIGURES = (
    "total_trades", "winning_trades", "losing_trades", "total_pnl", "total_commission",
    "win_rate", "starting_balance", "ending_balance", "max_drawdown",
)  # fmt: skip


class TradingSessionForm(forms.ModelForm):
    def clean(self):
        """A new session's rules are the service's, asked here so that a refusal shows at its
        field before ``save_model`` starts it."""
        cleaned = super().clean()
        if self.instance.pk is None and not self.errors:
            try:
                trading_session_start_check(
                    session_name=cleaned.get("session_name"),
                    trading_mode=cleaned.get("trading_mode"),
                )
            except ApplicationError as refused:
                for field, reason in refused.extra.items():
                    self.add_error(field if field in self.fields else None, reason)
        return cleaned


@admin.register(TradingSession)
class TradingSessionAdmin(ObjectActionsMixin, admin.ModelAdmin):
    """Started here with a name and a mode (one active per mode); its figures are read-only,
    computed from the fills and exits within it."""

    form = TradingSessionForm

    list_display = ("session_name", "trading_mode", "is_active", "started_at", "ended_at",
                    "total_trades", "win_rate", "total_pnl", "max_drawdown")  # fmt: skip
    list_filter = ("is_active", "trading_mode")
    ordering = ("-started_at", "-id")
    actions = ["end_session", "refresh_figures"]
    object_actions = ("end_session", "refresh_figures")
    object_action_confirms = {"end_session": "End this trading session?"}

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("session_name", "trading_mode", "starting_balance", "notes")
        return ("session_name", "trading_mode", "is_active", "started_at", "ended_at",
                *FIGURES, "broker", "notes")  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("session_name", "trading_mode", "is_active", "started_at", "ended_at",
                *FIGURES, "broker")  # fmt: skip

    def save_model(self, request, obj, form, change):
        if change:
            TradingSession.objects.filter(pk=obj.pk).update(notes=obj.notes)
            return
        started = trading_session_start(
            session_name=obj.session_name, trading_mode=obj.trading_mode,
            starting_balance=obj.starting_balance, notes=obj.notes,
        )  # fmt: skip
        obj.pk = started.pk
        obj.refresh_from_db()

    def object_action_allowed(self, request, session, name):
        return session.is_active

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="End the session", permissions=["change"])
    def end_session(self, request, queryset):
        self._run(request, queryset, lambda s: trading_session_end(session=s), "Ended")

    @admin.action(description="Compute its figures now", permissions=["change"])
    def refresh_figures(self, request, queryset):
        self._run(request, queryset, lambda s: trading_session_refresh(session=s), "Computed")

    def _run(self, request, queryset, service, verb):
        for session in queryset:
            try:
                service(session)
            except ApplicationError as refused:
                self.message_user(request, f"{session}: {refused}", messages.ERROR)
            else:
                self.message_user(request, f"{verb} {session}.")
