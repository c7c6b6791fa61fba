from django.contrib import admin
from django.db.models import OuterRef, Subquery
from django.utils.html import format_html, format_html_join

from orders.models import Order, Position, Trade
from strategies.models import Decision
from tradingsite.admin_forms import ServiceCheckedForm
from tradingsite.admin_tools import ReadOnlyAdmin, ServiceDeleteMixin, changelist_url
from tradingsite.broker import BrokerUnavailable
from tradingsite.broker.vocabulary import BAR_SIZES
from tradingsite.exceptions import ApplicationError

from .admin_charts import price_chart_data
from .models import Code, MarketData
from .services import (
    CODE_EDITABLE,
    code_create,
    code_create_check,
    code_delete,
    code_resolve,
    code_update,
)


class CodeForm(ServiceCheckedForm):
    """A new code with its conid as IB knows it, or with the conid left empty: then the
    broker is asked for it (``code_resolve``)."""

    class Meta:
        model = Code
        fields = ("symbol", "conid", "exchange", "currency", "sec_type", "name", "is_active")
        help_texts = {"conid": "IB contract id; leave empty to look the symbol up at IB."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["conid"].required = False
        self.resolved = self.saved = None

    def check(self, data):
        if self.errors:
            # Nothing is looked up at IB or written while a field is wrong: the admin's
            # transaction commits when it shows the form again, so a write here would stay.
            return
        if self.instance.pk is not None:
            # The change is made here, inside the admin's transaction, so that a refusal
            # (a conid that orders already use) shows next to its field.
            fields = {name: data[name] for name in CODE_EDITABLE if name in data}
            self.saved = code_update(code=Code.objects.get(pk=self.instance.pk), **fields)
        elif data.get("conid") is None:
            try:
                self.resolved = code_resolve(
                    symbol=data["symbol"],
                    exchange=data.get("exchange") or "SMART",
                    currency=data.get("currency") or "USD",
                    sec_type=data.get("sec_type") or "STK",
                    refresh=False,
                )
            except BrokerUnavailable as exc:
                raise ApplicationError(
                    "IB could not be reached.",
                    extra={"conid": f"Enter the conid by hand, or try again ({exc})."},
                ) from None
        else:
            code_create_check(symbol=data["symbol"], conid=data["conid"])


@admin.register(Code)
class CodeAdmin(ServiceDeleteMixin, admin.ModelAdmin):
    list_display = ("symbol", "name", "conid", "exchange", "sec_type", "is_active", "updated_at")
    search_fields = ("symbol", "=conid")
    search_help_text = "Search by symbol or exact IB contract id"
    list_filter = ("is_active", "exchange", "sec_type")
    form = CodeForm
    readonly_fields = ("related",)

    def get_fields(self, request, obj=None):
        fields = ["symbol", "conid", "exchange", "currency", "sec_type", "name", "is_active"]
        return fields + ["related"] if obj is not None else fields

    @admin.display(description="rows about this code")
    def related(self, code):
        links = [
            (changelist_url(Decision, code__id__exact=code.pk), "decisions"),
            (changelist_url(Order, instrument__exact=code.conid), "orders"),
            (changelist_url(Trade, instrument__exact=code.conid), "trades"),
            (changelist_url(Position, instrument__exact=code.conid), "positions"),
            (changelist_url(MarketData, conid=code.conid), "market data"),
        ]
        return format_html_join(" | ", '<a href="{}">{}</a>', links)

    def save_model(self, request, obj, form, change):
        if change:
            saved = form.saved
        elif form.resolved is not None:
            saved = code_update(
                code=form.resolved,
                name=form.cleaned_data.get("name") or "",
                is_active=form.cleaned_data.get("is_active", True),
            )
            self.message_user(request, f"{saved.symbol} resolved at IB: conid {saved.conid}.")
        else:
            saved = code_create(**{name: form.cleaned_data[name] for name in CODE_EDITABLE})
        obj.pk = saved.pk
        obj.refresh_from_db()

    def delete_service(self, code):
        code_delete(code=code)


class BarFilter(admin.SimpleListFilter):
    """IB's bar sizes, from the vocabulary: no DISTINCT over a big table to list them."""

    title = "bar size"
    parameter_name = "bar"
    UNITS = {"secs": 1, "min": 60, "mins": 60, "hour": 3600, "hours": 3600, "day": 86400,
             "week": 7 * 86400, "month": 30 * 86400}  # fmt: skip

    def lookups(self, request, model_admin):
        def seconds(size):
            number, unit = size.split()
            return int(number) * self.UNITS[unit]

        return [(size, size) for size in sorted(BAR_SIZES, key=seconds)]

    def queryset(self, request, queryset):
        return queryset.filter(bar=self.value()) if self.value() else queryset


@admin.register(MarketData)
class MarketDataAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "conid", "symbol", "period", "bar")
    list_filter = (BarFilter,)
    search_fields = ("=conid",)
    search_help_text = "Exact IB contract id"
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")  # the market_data_created_at_idx index, read backwards
    fields = ("conid", "symbol", "period", "bar", "created_at", "summary", "chart")
    readonly_fields = ("symbol", "summary", "chart")

    class Media:
        js = ("vendor/chart.umd.min.js", "tradingsite/price_chart.js")

    def get_queryset(self, request):
        symbol = Code.objects.filter(conid=OuterRef("conid")).values("symbol")[:1]
        rows = super().get_queryset(request).annotate(symbol=Subquery(symbol))
        # The document is large (every bar and indicator): a list never loads it.
        return rows if request.resolver_match.url_name.endswith("_change") else rows.defer("data")

    @admin.display(description="symbol")
    def symbol(self, row):
        return row.symbol or "-"

    @admin.display(description="bars")
    def summary(self, row):
        bars = (row.data or {}).get("bars") or {}
        times = bars.get("time") or []
        if not times:
            return "no bars"
        indicators = ", ".join(sorted((row.data or {}).get("indicators") or {})) or "none"
        return format_html(
            "{} bars from {} to {}, last close {}; indicators: {}",
            len(times), times[0][:10], times[-1][:10], bars["close"][-1], indicators,
        )  # fmt: skip

    @admin.display(description="chart")
    def chart(self, row):
        data = price_chart_data(row, decisions=[])
        return format_html(
            '<div class="price-chart"><canvas data-chart-id="md-{}"></canvas></div>{}',
            row.pk,
            data.script(f"md-{row.pk}"),
        )
