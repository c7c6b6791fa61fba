from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.db.models import OuterRef, Prefetch, Subquery
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.timesince import timesince

from marketdata.models import Code
from orders.models import Order, Position
from tradingsite.admin_forms import AutocompleteSelectMultiple, PrettyJSONField, ServiceCheckedForm
from tradingsite.admin_tools import (
    FormattedNumbersMixin,
    ObjectActionsMixin,
    ReadOnlyAdmin,
    ServiceDeleteMixin,
    change_url,
    changelist_url,
    each,
    link,
    open_if_one,
    report,
)
from tradingsite.exceptions import ApplicationError
from workflows.engine import error_name
from workflows.models import StrategyProbeResult, WorkflowExecution
from workflows.services import (
    backtest_settings,
    backtest_start,
    execution_start,
    params_check,
    strategy_clone,
    strategy_codes_check,
    strategy_create,
    strategy_resume,
    strategy_update,
)
from workflows.templates import strategy_steps

from .models import Decision, Strategy
from .schedules import schedule_check
from .services import strategy_delete, strategy_pause

# The parameters every built-in workflow understands, edited as fields of their own; anything
# else stays in the "Other parameters" JSON.
PARAM_FIELDS = {
    "period_1": "IB duration of the first timeframe, e.g. 1 Y",
    "bar_1": "IB bar size of the first timeframe, e.g. 1 day",
    "period_2": "IB duration of the second timeframe, e.g. 2 Y",
    "bar_2": "IB bar size of the second timeframe, e.g. 1 week",
    "period_3": "IB duration of the third timeframe (three indicator), e.g. 5 Y",
    "bar_3": "IB bar size of the third timeframe (three indicator), e.g. 1 month",
    "min_r_coefficient": "Smallest reward-to-risk (-r) the risk gate accepts",
    "min_profit_margin": "Smallest |target - price| / price the risk gate accepts, e.g. 0.05",
    "risk_per_trade": "Share of the account risked on one trade, e.g. 0.01",
    "account_size": "Account value the position size is computed from",
}


# One text field per known parameter, declared so the admin's fieldsets can name them.
ParamFields = type(
    "ParamFields",
    (forms.Form,),
    {
        name: forms.CharField(required=False, label=name, help_text=help_text)
        for name, help_text in PARAM_FIELDS.items()
    },
)


class StrategyForm(ServiceCheckedForm, ParamFields):
    """The strategy with its parameters as fields; an empty field means the workflow default,
    shown as the field's placeholder. Its codes are one compact multi-select, searched as
    they are typed."""

    traded_codes = forms.ModelMultipleChoiceField(
        queryset=Code.objects.order_by("symbol"), required=False, label="Codes",
        help_text="The codes it trades: type the first letters of a symbol.",
    )  # fmt: skip

    class Meta:
        model = Strategy
        fields = (
            "name", "type", "workflow", "active", "param", "schedule_interval_minutes",
            "schedule_crontab",
        )  # fmt: skip
        field_classes = {"param": PrettyJSONField}
        labels = {"param": "Other parameters"}
        help_texts = {"param": "Any further parameter the workflow uses, as a JSON object."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        codes = self.fields["traded_codes"]
        codes.widget = AutocompleteSelectMultiple(Strategy._meta.get_field("codes"), admin.site)
        codes.widget.choices = codes.choices
        if self.instance.pk is not None:
            self.initial["traded_codes"] = [c.pk for c in self.instance.codes.order_by("symbol")]
        param = dict(self.instance.param or {})
        _, defaults = strategy_steps(
            strategy_type=self.instance.type or "two_indicator", workflow=self.instance.workflow
        )
        for name in PARAM_FIELDS:
            self.initial[name] = param.pop(name, None)
            self.fields[name].widget.attrs["placeholder"] = defaults.get(name, "")
        self.initial["param"] = param
        self.fields["param"].required = False
        self.fields["param"].widget.attrs.update({"rows": 3, "cols": 60})

    def param_from(self, data):
        param = dict(data.get("param") or {}) if isinstance(data.get("param"), dict) else {}
        for name in PARAM_FIELDS:
            value = (data.get(name) or "").strip()
            if value:
                param[name] = value
        return param

    def check(self, data):
        if "param" in data:  # otherwise its JSON did not parse, and the field says so
            if isinstance(data["param"], dict | None):
                data["param"] = self.param_from(data)
            if "type" in data:
                # A param that is not an object is refused here too, next to its field.
                try:
                    params_check(
                        type=data["type"], param=data["param"], workflow=data.get("workflow")
                    )
                except ApplicationError as refused:
                    self.add_param_errors(refused)
        schedule_check(
            interval_minutes=data.get("schedule_interval_minutes"),
            crontab=data.get("schedule_crontab"),
        )
        try:
            strategy_codes_check(codes=data.get("traded_codes"))
        except ApplicationError as refused:
            self.add_error("traded_codes", refused.extra["codes"])

    def add_param_errors(self, refused):
        """Each problem next to the field of the parameter it is about: a step field filled
        from ``{{bar_2}}`` is the bar_2 field's problem (``StepError.param``)."""
        problems = dict(refused.extra)
        by_param = problems.pop("param", {})
        if not isinstance(by_param, dict):
            self.add_error("param", str(by_param))
        for field, reason in problems.items():
            self.add_error(field if field in self.fields else None, str(reason))
        for error in refused.errors:
            target = error.param if error.param in PARAM_FIELDS else "param"
            self.add_error(target, f"{error_name(error)}: {error.message}")


def _last_execution(field):
    return Subquery(
        WorkflowExecution.objects.filter(strategy=OuterRef("pk")).order_by("-id").values(field)[:1]
    )


@admin.register(Strategy)
class StrategyAdmin(ObjectActionsMixin, ServiceDeleteMixin, admin.ModelAdmin):
    list_display = (
        "name", "type", "workflow", "code_list", "schedule", "active", "last_run",
    )  # fmt: skip
    list_filter = ("active", "type", "workflow")
    list_select_related = ("workflow", "periodic_task__interval", "periodic_task__crontab")
    search_fields = ("name", "codes__symbol")
    form = StrategyForm
    actions = ["run_now", "pause", "resume", "clone", "backtest_last_year"]
    object_actions = ("run_now", "pause", "resume", "clone")
    # Adds the strategy's performance (figures, equity and drawdown) below its fields.
    change_form_template = "admin/strategies/strategy/change_form.html"
    readonly_fields = ("related", "recent_runs")
    fieldsets = (
        (None, {"fields": ("name", "type", "workflow", "traded_codes", "active")}),
        ("Parameters", {"fields": (*PARAM_FIELDS, "param")}),
        (
            "Schedule",
            {
                "fields": ("schedule_interval_minutes", "schedule_crontab"),
                "description": "Saved into Celery beat with the strategy; a paused strategy's "
                "schedule is kept but disabled.",
            },
        ),
        ("History", {"fields": ("related", "recent_runs")}),
    )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .prefetch_related(Prefetch("codes", queryset=Code.objects.order_by("symbol")))
            .annotate(
                last_run_id=_last_execution("id"),
                last_run_status=_last_execution("status"),
                last_run_at=_last_execution("created_at"),
            )
        )

    @admin.display(description="codes")
    def code_list(self, strategy):
        return ", ".join(code.symbol for code in strategy.codes.all()) or "-"

    @admin.display(description="schedule")
    def schedule(self, strategy):
        if strategy.schedule_interval_minutes:
            text = f"every {strategy.schedule_interval_minutes} min"
        elif strategy.schedule_crontab:
            text = f"cron {strategy.schedule_crontab} UTC"
        else:
            return "-"
        task = strategy.periodic_task
        if task is not None and not task.enabled:
            text += " (paused)"
        return text

    @admin.display(description="last run", ordering="last_run_id")
    def last_run(self, strategy):
        if strategy.last_run_id is None:
            return "never"
        return format_html(
            '<a href="{}"><span class="status status-{}">{}</span> {} ago</a>',
            change_url(WorkflowExecution, strategy.last_run_id),
            strategy.last_run_status,
            strategy.last_run_status,
            timesince(strategy.last_run_at).split(",")[0],
        )

    @admin.display(description="rows about this strategy")
    def related(self, strategy):
        if strategy.pk is None:
            return "-"
        conids = ",".join(str(code.conid) for code in strategy.codes.all())
        links = [
            (changelist_url(Decision, strategy__id__exact=strategy.pk), "decisions"),
            (changelist_url(Order, strategy=strategy.pk), "orders"),
            (changelist_url(WorkflowExecution, strategy__id__exact=strategy.pk), "runs"),
        ]
        if conids:  # a position belongs to a contract, whichever strategy traded it
            links.append(
                (changelist_url(Position, instrument__in=conids), "positions in its codes")
            )
        return format_html_join(" | ", '<a href="{}">{}</a>', links)

    @admin.display(description="recent runs")
    def recent_runs(self, strategy):
        if strategy.pk is None:
            return "-"
        runs = WorkflowExecution.objects.filter(strategy=strategy).order_by("-id")[:10]
        rows = format_html_join(
            "",
            '<li><a href="{}">#{}</a> <span class="status status-{}">{}</span> {}</li>',
            (
                (change_url(run), run.pk, run.status, run.status,
                 f"{run.created_at:%Y-%m-%d %H:%M} UTC")
                for run in runs
            ),
        )  # fmt: skip
        return format_html("<ul class='plain'>{}</ul>", rows) if runs else "none yet"

    def object_action_allowed(self, request, strategy, name):
        return {"pause": strategy.active, "resume": not strategy.active}.get(name, True)

    # --- Saving through the services -------------------------------------------------------

    def save_model(self, request, obj, form, change):
        fields = {
            name: form.cleaned_data[name]
            for name in ("name", "type", "param", "workflow", "active",
                         "schedule_interval_minutes", "schedule_crontab")
        }  # fmt: skip
        fields["schedule_crontab"] = fields["schedule_crontab"] or ""
        fields["codes"] = list(form.cleaned_data["traded_codes"])  # checked with the rest
        saved = strategy_update(strategy=obj, **fields) if change else strategy_create(**fields)
        obj.pk = saved.pk
        obj.refresh_from_db()

    def delete_service(self, strategy):
        strategy_delete(strategy=strategy)

    # --- Actions -----------------------------------------------------------------------------

    @admin.action(description="Run now", permissions=["change"])
    def run_now(self, request, queryset):
        started = []
        for strategy in queryset:
            try:
                execution = execution_start(strategy=strategy)
            except ApplicationError as refused:
                self.message_user(request, f"{strategy} did not run: {refused}", messages.ERROR)
                continue
            started.append(execution)
            self.message_user(
                request,
                format_html(
                    'Started execution <a href="{}">#{}</a> of {}.',
                    change_url(execution), execution.pk, strategy,
                ),
            )  # fmt: skip
        return open_if_one(started)

    @admin.action(description="Backtest the last year (bar store)", permissions=["change"])
    def backtest_last_year(self, request, queryset):
        """A year of the bar store up to today, IB's commissions, queued for a worker; the
        results appear under Backtest results."""
        today = timezone.now().date()
        for strategy in queryset:
            try:
                settings = backtest_settings(start=today - timedelta(days=365), end=today)
                task_id = backtest_start(strategy=strategy, settings=settings)
            except ApplicationError as refused:
                self.message_user(request, f"{strategy}: no backtest: {refused}", messages.ERROR)
                continue
            self.message_user(
                request,
                format_html(
                    "Backtest of {} queued (task {}); its results will be under "
                    '<a href="{}?strategy__id__exact={}">Backtest results</a>.',
                    strategy, task_id, changelist_url(StrategyProbeResult), strategy.pk,
                ),
            )  # fmt: skip

    @admin.action(description="Pause (stop scheduled runs)", permissions=["change"])
    def pause(self, request, queryset):
        report(self, request, *each(queryset, lambda s: strategy_pause(strategy=s)),
               verb="Paused")  # fmt: skip

    @admin.action(description="Resume (scheduled runs again)", permissions=["change"])
    def resume(self, request, queryset):
        report(self, request, *each(queryset, lambda s: strategy_resume(strategy=s)),
               verb="Resumed")  # fmt: skip
        unscheduled = [s.name for s in queryset if not s.schedule_interval_minutes
                       and not s.schedule_crontab]  # fmt: skip
        if unscheduled:
            self.message_user(
                request,
                f"{', '.join(unscheduled)}: no schedule, so no run starts on its own; set an "
                "interval or a crontab, or use Run now.",
                messages.WARNING,
            )

    @admin.action(description="Clone (the copy starts paused)", permissions=["add"])
    def clone(self, request, queryset):
        copies = []
        for strategy in queryset:
            try:
                copy = strategy_clone(strategy=strategy)
            except ApplicationError as refused:  # its workflow changed under it, say
                self.message_user(request, f"{strategy} was not cloned: {refused}", messages.ERROR)
                continue
            copies.append(copy)
            self.message_user(
                request,
                format_html('Cloned {} as <a href="{}">{}</a> (paused).',
                            strategy, change_url(copy), copy),
            )  # fmt: skip
        return open_if_one(copies)


@admin.register(Decision)
class DecisionAdmin(FormattedNumbersMixin, ReadOnlyAdmin):
    number_formats = {
        "current_price": "price", "proposed_price": "price", "target_price": "price",
        "stop_loss": "price", "r_coefficient": "reward_risk", "profit_margin": "percent",
    }  # fmt: skip
    list_display = (
        "created_at", "code_link", "strategy_link", "type", "current_price", "price_at",
        "target_price", "stop_loss", "r_coefficient", "profit_margin", "status", "confidence",
        "llm_model", "execution_time_ms", "execution_link", "order_link",
    )  # fmt: skip
    list_filter = ("type", "status", "strategy")
    search_fields = ("^code__symbol",)
    search_help_text = "Search by symbol"
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")  # the ix_decision_created_at index, read backwards
    readonly_fields = ("order_link", "execution_link")

    def get_queryset(self, request):
        # the decision's own order: its entry (or exit), not a bracket's child
        order = Order.objects.filter(decision=OuterRef("pk"), parent_order__isnull=True)
        order = order.values("pk")[:1]
        rows = super().get_queryset(request).select_related("code", "strategy")
        return rows.annotate(order_id=Subquery(order))

    @admin.display(description="code", ordering="code__symbol")
    def code_link(self, decision):
        return link(change_url(decision.code), decision.code.symbol)

    @admin.display(description="strategy")
    def strategy_link(self, decision):
        return link(change_url(decision.strategy), decision.strategy.name)

    @admin.display(description="execution")
    def execution_link(self, decision):
        if decision.workflow_execution_id is None:
            return "-"
        return link(
            change_url(WorkflowExecution, decision.workflow_execution_id),
            f"#{decision.workflow_execution_id}",
        )

    @admin.display(description="order")
    def order_link(self, decision):
        order_id = getattr(decision, "order_id", None)
        if order_id is None:
            return "-"
        return link(change_url(Order, order_id), f"order #{order_id}")
