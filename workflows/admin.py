import json
from pathlib import Path

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import display_for_value
from django.db.models import Count, Sum
from django.http import (
    FileResponse,
    Http404,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from marketdata.admin_charts import PriceChart, document_chart
from marketdata.models import Code
from marketdata.selectors import stored_bars_documents
from strategies.models import Strategy
from tradingsite.admin_forms import PrettyJSONField, ServiceCheckedForm
from tradingsite.admin_tools import (
    ObjectActionsMixin,
    ReadOnlyAdmin,
    ServiceDeleteMixin,
    change_url,
    changelist_url,
    link,
    open_if_one,
    report,
    short_link,
)
from tradingsite.exceptions import ApplicationError
from tradingsite.money import decision_r_text, percent_text, quantity_text

from .admin_diff import diff_summary, steps_diff
from .charts import chart_file
from .models import (
    AgentConversation,
    ExecutionStatus,
    StrategyProbeConversation,
    StrategyProbeResult,
    StrategyProbeTrade,
    Workflow,
    WorkflowExecution,
    WorkflowMetrics,
)
from .services import (
    EDITABLE,
    breaks_described,
    execution_cancel,
    workflow_breaks,
    workflow_check,
    workflow_clone,
    workflow_create,
    workflow_delete,
    workflow_is_builtin,
    workflow_revert,
    workflow_update,
)

RUNNING = (ExecutionStatus.PENDING, ExecutionStatus.RUNNING)


def admin_url(name, *args):
    return reverse(f"admin:{name}", args=args)


# --- Workflows ---------------------------------------------------------------------------------


class WorkflowForm(ServiceCheckedForm):
    """A change that would break a strategy using the workflow is refused naming each; the
    form comes back as a second screen with a box to tick: pause those strategies and save."""

    pause_strategies = forms.BooleanField(
        required=False, widget=forms.HiddenInput, label="Pause them and save",
        help_text="The strategies above are paused (their schedules stop) and the workflow is "
                  "saved. Resume each once its parameters fit the new steps.",
    )  # fmt: skip

    class Meta:
        model = Workflow
        fields = ("name", "type", "description", "steps", "default_params")
        field_classes = {"steps": PrettyJSONField, "default_params": PrettyJSONField}
        help_texts = {
            "steps": 'A list of {"type": ..., "config": {...}}; {{name}} takes a parameter.',
            "default_params": "Parameters a strategy inherits unless it sets its own.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "steps" not in self.fields:  # a read-only page (a built-in template)
            return
        self.fields["steps"].widget.attrs.update({"rows": 24, "cols": 90, "class": "code"})
        self.fields["default_params"].widget.attrs.update({"rows": 10, "cols": 90, "class": "code"})

    def check(self, data):
        if data.get("default_params", "") is None:  # left empty: no defaults
            data["default_params"] = {}
        # The service's own check, on the JSON fields that parsed (the others say why not).
        workflow_check({name: data[name] for name in ("steps", "default_params") if name in data})
        if self.instance.pk is None or not {"steps", "default_params"} <= data.keys():
            return
        broken = workflow_breaks(
            workflow=self.instance, steps=data["steps"], default_params=data["default_params"]
        )
        if broken and not data.get("pause_strategies"):
            count = f"{len(broken)} {'strategy' if len(broken) == 1 else 'strategies'}"
            self.add_error(None, f"Saving would break {count} using this workflow:")
            for line in breaks_described(broken):
                self.add_error(None, line)
            self.add_error(None, "Tick 'Pause them and save' below to save and pause them.")
            self.fields["pause_strategies"].widget = forms.CheckboxInput()


@admin.register(Workflow)
class WorkflowAdmin(ObjectActionsMixin, ServiceDeleteMixin, admin.ModelAdmin):
    list_display = ("name", "type", "version", "strategies_using", "updated_at")
    list_filter = ("type",)
    list_select_related = ("current_version",)
    search_fields = ("name",)
    form = WorkflowForm
    actions = ["clone"]
    object_actions = ("clone",)
    readonly_fields = ("used_by", "history")
    fieldsets = (
        (None, {"fields": ("name", "type", "description")}),
        ("Steps", {"fields": ("steps", "default_params", "pause_strategies")}),
        ("Strategies using this workflow", {"fields": ("used_by",)}),
        ("Version history", {"fields": ("history",)}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(strategy_count=Count("strategies"))

    def has_change_permission(self, request, obj=None):
        # A built-in template is shown read-only, with its Clone button: edit the copy.
        if obj is not None and workflow_is_builtin(obj):
            return False
        return super().has_change_permission(request, obj)

    def get_urls(self):
        return [
            path("<int:pk>/versions/<int:number>/", self.admin_site.admin_view(self.version_view),
                 name="workflows_workflow_version"),
            path("<int:pk>/versions/<int:number>/revert/",
                 self.admin_site.admin_view(self.revert_view), name="workflows_workflow_revert"),
            *super().get_urls(),
        ]  # fmt: skip

    @admin.display(description="version", ordering="current_version__version_number")
    def version(self, workflow):
        version = workflow.current_version
        return f"v{version.version_number}" if version else "-"

    @admin.display(description="strategies", ordering="strategy_count")
    def strategies_using(self, workflow):
        if not workflow.strategy_count:
            return 0
        return link(
            changelist_url(Strategy, workflow__id__exact=workflow.pk), workflow.strategy_count
        )

    @admin.display(description="used by")
    def used_by(self, workflow):
        if workflow.pk is None:
            return "-"
        strategies = workflow.strategies.order_by("name")
        if not strategies:
            return "No strategy uses this workflow."
        return format_html_join(
            ", ", '<a href="{}">{}</a>{}',
            ((change_url(s), s.name, "" if s.active else " (paused)") for s in strategies),
        )  # fmt: skip

    @admin.display(description="versions")
    def history(self, workflow):
        if workflow.pk is None:
            return "-"
        versions = list(workflow.versions.order_by("version_number"))
        rows = []
        previous = None
        for version in versions:
            changes = diff_summary(steps_diff(previous.steps, version.steps)) if previous else "-"
            rows.append({
                "url": admin_url("workflows_workflow_version", workflow.pk, version.version_number),
                "number": version.version_number,
                "current": " (current)" if version.pk == workflow.current_version_id else "",
                "saved_by": version.created_by or "-",
                "at": f"{version.created_at:%Y-%m-%d %H:%M} UTC",
                "note": version.note or "",
                "changes": changes,
            })  # fmt: skip
            previous = version
        return render_to_string("admin/workflows/workflow/history.html", {"rows": rows[::-1]})

    def version_view(self, request, pk, number):
        workflow = get_object_or_404(Workflow.objects.select_related("current_version"), pk=pk)
        if not self.has_view_permission(request, workflow):
            raise Http404
        version = get_object_or_404(workflow.versions, version_number=number)
        against_number = request.GET.get("against")
        if against_number and against_number.isdigit():
            against = get_object_or_404(workflow.versions, version_number=int(against_number))
        else:
            against = (
                workflow.versions.filter(version_number__lt=number)
                .order_by("-version_number")
                .first()
            )
        numbers = list(workflow.versions.order_by("-version_number").values_list(
            "version_number", flat=True
        ))  # fmt: skip
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"{workflow.name}: version {number}",
            "workflow": workflow,
            "version": version,
            "against": against,
            "numbers": numbers,
            "changes": steps_diff(against.steps if against else [], version.steps),
            "steps_json": json.dumps(version.steps, indent=2, ensure_ascii=False),
            "is_current": version.pk == workflow.current_version_id,
            "can_revert": self.has_change_permission(request, workflow),
            "revert_url": admin_url("workflows_workflow_revert", workflow.pk, number),
        }
        return TemplateResponse(request, "admin/workflows/workflow/version.html", context)

    def revert_view(self, request, pk, number):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        workflow = get_object_or_404(Workflow, pk=pk)
        if not self.has_change_permission(request, workflow):
            raise Http404
        try:
            workflow = workflow_revert(
                workflow=workflow, version_number=number, created_by=request.user
            )
        except ApplicationError as refused:
            self.message_user(request, str(refused), messages.ERROR)
        else:
            self.message_user(
                request,
                f"Reverted {workflow.name} to the steps of v{number}, saved as "
                f"v{workflow.current_version.version_number}.",
            )
        return HttpResponseRedirect(change_url(workflow))

    def save_model(self, request, obj, form, change):
        # Through the services, so a change of steps writes a version by this user.
        fields = {name: form.cleaned_data[name] for name in EDITABLE if name in form.cleaned_data}
        if change:
            saved = workflow_update(
                workflow=obj, created_by=request.user,
                pause_strategies=bool(form.cleaned_data.get("pause_strategies")), **fields,
            )  # fmt: skip
            if saved.paused_strategies:
                names = ", ".join(s.name for s in saved.paused_strategies)
                self.message_user(request, f"Paused, as confirmed: {names}.", messages.WARNING)
        else:
            saved = workflow_create(created_by=request.user, **fields)
        obj.pk = saved.pk
        obj.refresh_from_db()

    def delete_service(self, workflow):
        workflow_delete(workflow=workflow)

    @admin.action(description="Clone (a copy with the same steps)", permissions=["add"])
    def clone(self, request, queryset):
        copies = [workflow_clone(workflow=w, created_by=request.user) for w in queryset]
        for copy in copies:
            self.message_user(
                request, format_html('Created <a href="{}">{}</a>.', change_url(copy), copy)
            )
        return open_if_one(copies)


# --- Executions --------------------------------------------------------------------------------


def progress_html(execution):
    """The progress bar of a run (the execution's page, its list and the dashboard's)."""
    return render_to_string(
        "admin/workflows/workflowexecution/progress.html", {"execution": execution}
    )


def charts_of(execution):
    """{file name: caption} of the PNGs a run drew (``results["charts"]``, from generate_chart)."""
    charts = {}
    for chart in (execution.results or {}).get("charts") or []:
        if isinstance(chart, dict) and chart.get("path"):
            charts[Path(chart["path"]).name] = f"{chart.get('symbol', '')} {chart.get('bar', '')}"
        elif isinstance(chart, str):
            charts[Path(chart).name] = Path(chart).stem
    return charts


def decisions_of(execution):
    return execution.decisions.select_related("code").order_by("id")


def decisions_url(execution):
    return changelist_url(execution.decisions.model, workflow_execution__id__exact=execution.pk)


def status_html(status):
    return format_html('<span class="status status-{}">{}</span>', status, status)


@admin.register(WorkflowExecution)
class WorkflowExecutionAdmin(ObjectActionsMixin, ReadOnlyAdmin):
    list_display = (
        "id", "strategy_link", "workflow_link", "status_badge", "progress_bar", "created_at",
        "duration",
    )  # fmt: skip
    list_display_links = ("id",)
    list_filter = ("status", "workflow", "strategy", ("created_at", admin.DateFieldListFilter))
    list_select_related = ("strategy", "workflow")
    search_fields = ("=id", "strategy__name")
    search_help_text = "Search by execution id or strategy name"
    ordering = ("-id",)  # the primary key's index
    actions = ["cancel"]
    object_actions = ("cancel",)
    fieldsets = (
        (None, {"fields": (
            "strategy", "workflow", "status_badge", "progress_bar", "created_at", "started_at",
            "completed_at", "duration", "task_id", "error_message",
        )}),
        ("Results", {"fields": ("results_summary", "decisions", "charts")}),
        ("Agents", {"fields": ("transcript",)}),
        ("Log", {"fields": ("log",)}),
    )  # fmt: skip
    readonly_fields = (
        "status_badge", "progress_bar", "duration", "results_summary", "decisions", "charts",
        "transcript", "log",
    )  # fmt: skip

    class Media:
        js = ("tradingsite/execution_progress.js",)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/progress/", view(self.progress_view),
                 name="workflows_workflowexecution_progress"),
            path("<int:pk>/transcript/", view(self.transcript_view),
                 name="workflows_workflowexecution_transcript"),
            path("<int:pk>/charts/<str:name>", view(self.chart_view),
                 name="workflows_workflowexecution_chart"),
            *super().get_urls(),
        ]  # fmt: skip

    def has_cancel_permission(self, request):
        return request.user.has_perm("workflows.change_workflowexecution")

    def object_action_allowed(self, request, execution, name):
        return execution.status in RUNNING

    @admin.display(description="strategy", ordering="strategy__name")
    def strategy_link(self, execution):
        return short_link(change_url(execution.strategy), execution.strategy.name)

    @admin.display(description="workflow")
    def workflow_link(self, execution):
        if execution.workflow is None:
            return "legacy template"
        return short_link(change_url(execution.workflow), execution.workflow.name)

    @admin.display(description="status", ordering="status")
    def status_badge(self, execution):
        return status_html(execution.status)

    @admin.display(description="progress")
    def progress_bar(self, execution):
        return progress_html(execution)

    @admin.display(description="duration")
    def duration(self, execution):
        if not execution.started_at or not execution.completed_at:
            return "-"
        seconds = (execution.completed_at - execution.started_at).total_seconds()
        return f"{seconds:.1f} s"

    @admin.display(description="summary")
    def results_summary(self, execution):
        results = execution.results or {}
        failed = ", ".join(results.get("failed_symbols") or []) or "none"
        return format_html(
            "{} codes processed, {} decisions, {} orders{}; failed codes: {}",
            results.get("symbols_processed", 0),
            results.get("decisions_made", 0),
            results.get("orders_placed", 0),
            " (dry run: no order sent)" if results.get("dry_run") else "",
            failed,
        )

    @admin.display(description="decisions and orders")
    def decisions(self, execution):
        made = decisions_of(execution).prefetch_related("orders")
        rows = []
        for decision in made:
            orders = format_html_join(
                ", ", '<a href="{}">order #{} {} {} ({})</a>',
                ((change_url(o), o.pk, o.side, quantity_text(o.quantity), o.status)
                 for o in decision.orders.all()),
            ) or "no order"  # fmt: skip
            rows.append(format_html(
                '<li><a href="{}">{}</a> ({}, margin {}) &rarr; {}</li>',
                change_url(decision), decision.summary, decision_r_text(decision),
                percent_text(decision.profit_margin), orders,
            ))  # fmt: skip
        if not rows:
            return "none"
        items = format_html_join("", "{}", ((row,) for row in rows))
        return format_html(
            "<ul class='plain'>{}</ul>{}",
            items,
            link(decisions_url(execution), "In the decision list"),
        )

    @admin.display(description="charts")
    def charts(self, execution):
        charts = charts_of(execution)
        if not charts:
            return "none"
        return format_html_join(
            "", '<figure class="chart"><img src="{}" alt="{}" loading="lazy"><figcaption>{}'
                "</figcaption></figure>",
            ((admin_url("workflows_workflowexecution_chart", execution.pk, name), caption,
              caption) for name, caption in charts.items()),
        )  # fmt: skip

    @admin.display(description="conversation")
    def transcript(self, execution):
        totals = AgentConversation.objects.filter(workflow_execution=execution).aggregate(
            messages=Count("id"), tokens=Sum("tokens_used")
        )
        if not totals["messages"]:
            return "The agents said nothing in this run."
        return format_html(
            '<a class="button" href="{}">Open the transcript</a> {} messages, {} tokens',
            admin_url("workflows_workflowexecution_transcript", execution.pk),
            totals["messages"],
            totals["tokens"] or 0,
        )

    @admin.display(description="log")
    def log(self, execution):
        lines = (execution.results or {}).get("execution_logs") or []
        if not lines:
            gone = (execution.results or {}).get("execution_logs_deleted")
            if gone:
                return (f"{gone['lines']} lines, deleted on {gone['at'][:10]} "
                        "(EXECUTION_LOG_RETENTION_DAYS)")  # fmt: skip
            return "empty"
        rows = [
            {"level": line.get("level", "info"), "time": (line.get("time") or "")[11:19],
             "symbol": line.get("symbol", ""), "step": line.get("step", ""),
             "message": line.get("message", "")}
            for line in lines
        ]  # fmt: skip
        return render_to_string("admin/workflows/workflowexecution/log.html", {"rows": rows})

    def _execution(self, request, pk):
        execution = get_object_or_404(
            WorkflowExecution.objects.select_related("strategy", "workflow"), pk=pk
        )
        if not self.has_view_permission(request, execution):
            raise Http404
        return execution

    def progress_view(self, request, pk):
        execution = self._execution(request, pk)
        percent, text = execution.progress_shown()
        # The page's status and start follow the bar: one row read, so they always agree.
        return JsonResponse({
            "id": execution.pk,
            "status": execution.status,
            "status_html": status_html(execution.status),
            "started_at": display_for_value(execution.started_at, "-"),
            "final": execution.status not in RUNNING,
            "percent": percent,
            "text": text,
            "progress": execution.progress,
        })  # fmt: skip

    def transcript_view(self, request, pk):
        execution = self._execution(request, pk)
        messages_ = list(AgentConversation.objects.filter(workflow_execution=execution).order_by(
            "timestamp", "id"
        ))  # fmt: skip
        by_agent = {}
        for message in messages_:
            seen = by_agent.setdefault(message.agent_name, {"messages": 0, "tokens": 0})
            seen["messages"] += 1
            seen["tokens"] += message.tokens_used or 0
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Transcript of execution #{execution.pk}",
            "execution": execution,
            "conversation": messages_,
            "by_agent": sorted(by_agent.items()),
            "total_tokens": sum(m.tokens_used or 0 for m in messages_),
            "decisions": [(d.pk, d.summary) for d in decisions_of(execution)],
            "decisions_url": decisions_url(execution),
        }
        return TemplateResponse(request, "admin/workflows/workflowexecution/transcript.html",
                                context)  # fmt: skip

    def chart_view(self, request, pk, name):
        """The run's chart, drawn at its first view (``chart_file``)."""
        execution = self._execution(request, pk)
        target = chart_file(execution=execution, name=name)
        if target is None:
            raise Http404("No such chart")
        return FileResponse(target.open("rb"), content_type="image/png")

    @admin.action(description="Cancel (a running one stops between two steps)",
                  permissions=["cancel"])  # fmt: skip
    def cancel(self, request, queryset):
        done, refused = [], []
        for execution in queryset:
            try:
                execution_cancel(execution=execution)
            except ApplicationError as error:
                refused.append((f"Execution #{execution.pk}", error))
            else:
                done.append(f"#{execution.pk}")
        report(self, request, done, refused, verb="Cancelled execution")


@admin.register(AgentConversation)
class AgentConversationAdmin(ReadOnlyAdmin):
    list_display = (
        "timestamp", "execution_link", "agent_name", "message_type", "tokens_used", "excerpt",
    )  # fmt: skip
    list_filter = ("message_type",)
    search_fields = ("=agent_name", "=workflow_execution__id")
    search_help_text = "Exact agent name or execution id"
    ordering = ("-id",)

    @admin.display(description="execution")
    def execution_link(self, message):
        return link(
            admin_url("workflows_workflowexecution_transcript", message.workflow_execution_id),
            f"#{message.workflow_execution_id}",
        )

    @admin.display(description="message")
    def excerpt(self, message):
        return Truncator(message.message_content).chars(120)


@admin.register(WorkflowMetrics)
class WorkflowMetricsAdmin(ReadOnlyAdmin):
    list_display = ("date", "workflow", "runs", "success_rate", "orders_placed")
    list_filter = ("workflow",)
    list_select_related = ("workflow",)
    date_hierarchy = "date"

    @admin.display(description="runs")
    def runs(self, row):
        return row.metrics.get("total_executions")

    @admin.display(description="success rate")
    def success_rate(self, row):
        rate = row.metrics.get("success_rate")
        return "-" if rate is None else f"{rate:.0%}"

    @admin.display(description="orders")
    def orders_placed(self, row):
        return row.metrics.get("orders_placed")


def equity_overlay(results):
    """The runs' equity curves on one axis of dates (the union of theirs), for one chart: a
    run without a point on a date has none (null) there."""
    curves = [dict((t[:10], v) for t, v in (r.metrics or {}).get("equity_curve") or [])
              for r in results]  # fmt: skip
    labels = sorted(set().union(*curves)) if curves else []
    return {
        "labels": labels,
        "curves": [
            {"label": f"{r.run_id} {r.symbol}", "equity": [curve.get(day) for day in labels]}
            for r, curve in zip(results, curves, strict=True)
        ],
    }


class ProbeTradeInline(admin.TabularInline):
    model = StrategyProbeTrade
    fields = ("side", "quantity", "entry_time", "entry_price", "exit_time", "exit_price", "pnl",
              "return_pct", "exit_reason")  # fmt: skip
    readonly_fields = fields
    ordering = ("entry_time", "id")
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(StrategyProbeResult)
class StrategyProbeResultAdmin(ReadOnlyAdmin):
    """A backtest's outcome per code: statistics, the equity curve, the trades on the price."""

    list_display = ("run_id", "strategy", "symbol", "period_start", "period_end", "total_trades",
                    "win_rate_shown", "profit_factor_shown", "total_pnl", "return_shown",
                    "sharpe_shown", "drawdown_shown")  # fmt: skip
    list_filter = ("strategy",)
    list_select_related = ("strategy",)
    search_fields = ("=run_id", "symbol")
    search_help_text = "Exact run id, or symbol"
    ordering = ("-created_at", "-id")
    actions = ["compare"]
    inlines = [ProbeTradeInline]
    fields = ("run_id", "strategy", "symbol", "period_start", "period_end", "open_day",
              "total_trades", "win_rate", "profit_factor", "total_pnl", "return_shown",
              "sharpe_ratio", "max_drawdown", "settings_shown", "conversation_shown",
              "equity_chart", "trades_chart")  # fmt: skip
    readonly_fields = ("return_shown", "settings_shown", "conversation_shown", "equity_chart",
                       "trades_chart")  # fmt: skip

    class Media:
        js = ("vendor/chart.umd.min.js", "tradingsite/price_chart.js")

    def get_queryset(self, request):
        rows = super().get_queryset(request)
        # The equity curve is long: a list leaves it out.
        if request.resolver_match and request.resolver_match.url_name.endswith("_change"):
            return rows
        return rows.defer("metrics")

    @staticmethod
    def _figure(value, suffix=""):
        return "-" if value is None else f"{value:,.2f}{suffix}"

    @admin.display(description="win rate", ordering="win_rate")
    def win_rate_shown(self, result):
        return self._figure(result.win_rate, " %")

    @admin.display(description="profit factor", ordering="profit_factor")
    def profit_factor_shown(self, result):
        return self._figure(result.profit_factor)

    @admin.display(description="return")
    def return_shown(self, result):
        return self._figure((result.metrics or {}).get("return_pct"), " %")

    @admin.display(description="Sharpe", ordering="sharpe_ratio")
    def sharpe_shown(self, result):
        return self._figure(result.sharpe_ratio)

    @admin.display(description="max drawdown", ordering="max_drawdown")
    def drawdown_shown(self, result):
        return self._figure(result.max_drawdown, " %")

    @admin.display(description="settings")
    def settings_shown(self, result):
        metrics = result.metrics or {}
        return (
            f"starting cash {metrics.get('starting_cash')}, final equity of the run "
            f"{metrics.get('final_equity')}, commission {metrics.get('commission')}, slippage "
            f"{metrics.get('slippage_bps')} bps, "
            f"{'long and short' if metrics.get('allow_short') else 'long only'}, "
            f"{'entries alone' if metrics.get('brackets') is False else 'brackets worked'}"
        )

    @admin.display(description="agents' conversation")
    def conversation_shown(self, result):
        count = result.conversation.count()
        if not count:
            return "no agent messages (a rules-only workflow)"
        url = reverse("admin:workflows_strategyprobeconversation_changelist")
        return format_html('<a href="{}?result__id__exact={}">{} agent messages</a>', url,
                           result.pk, count)  # fmt: skip

    @admin.display(description="equity curve")
    def equity_chart(self, result):
        curve = (result.metrics or {}).get("equity_curve") or []
        chart = PriceChart(title=f"{result.symbol}: equity", labels=[t[:10] for t, _ in curve],
                           close=[v for _, v in curve], lines={})  # fmt: skip
        return format_html('<div class="price-chart"><canvas data-chart-id="equity-{}"></canvas>'
                           "</div>{}", result.pk, chart.script(f"equity-{result.pk}"))  # fmt: skip

    @admin.display(description="trades on the price")
    def trades_chart(self, result):
        from types import SimpleNamespace

        code = Code.objects.filter(symbol=result.symbol).order_by("id").first()
        documents = {} if code is None else stored_bars_documents(
            codes=[code], timeframe="1Day", last=100_000, start=result.period_start,
            end=result.period_end,
        )  # fmt: skip
        if code is None or code.pk not in documents:
            return "no stored daily bars of the period"
        marks = []
        for trade in result.trades.order_by("entry_time"):
            opening = "buy" if trade.side == "long" else "sell"
            closing = "sell" if trade.side == "long" else "buy"
            marks.append(SimpleNamespace(pk=trade.pk, type=opening, created_at=trade.entry_time,
                                         current_price=trade.entry_price))  # fmt: skip
            if trade.exit_time is not None and trade.exit_reason != "open at the end":
                marks.append(SimpleNamespace(pk=trade.pk, type=closing, created_at=trade.exit_time,
                                             current_price=trade.exit_price))  # fmt: skip
        chart = document_chart(documents[code.pk], title=f"{result.symbol}: trades (#trade id)",
                               decisions=marks)  # fmt: skip
        return format_html('<div class="price-chart"><canvas data-chart-id="trades-{}"></canvas>'
                           "</div>{}", result.pk, chart.script(f"trades-{result.pk}"))  # fmt: skip

    @admin.action(description="Compare side by side")
    def compare(self, request, queryset):
        results = list(queryset.select_related("strategy").order_by("-created_at", "-id")[:12])
        rows = [
            ("strategy", [r.strategy for r in results]),
            ("symbol", [r.symbol for r in results]),
            ("period", [f"{r.period_start:%Y-%m-%d} - {r.period_end:%Y-%m-%d}" for r in results]),
            ("trades", [r.total_trades for r in results]),
            ("win rate", [self.win_rate_shown(r) for r in results]),
            ("profit factor", [self.profit_factor_shown(r) for r in results]),
            ("P&L", [self._figure(r.total_pnl) for r in results]),
            ("return", [self.return_shown(r) for r in results]),
            ("Sharpe", [self.sharpe_shown(r) for r in results]),
            ("max drawdown", [self.drawdown_shown(r) for r in results]),
            ("settings", [self.settings_shown(r) for r in results]),
        ]
        return TemplateResponse(request, "admin/workflows/strategyproberesult/compare.html", {
            **self.admin_site.each_context(request), "title": "Backtests side by side",
            "results": results, "rows": rows, "opts": self.model._meta,
            "equity": equity_overlay(results),
        })  # fmt: skip


@admin.register(StrategyProbeConversation)
class StrategyProbeConversationAdmin(ReadOnlyAdmin):
    """The agents' messages of backtests, each at the bar its agents stood at."""

    list_display = ("bar_time", "result", "agent_name", "message_type", "content_shown",
                    "tokens_used", "llm_model")  # fmt: skip
    list_select_related = ("result",)
    list_filter = ("message_type",)
    search_fields = ("=result__run_id", "agent_name")
    search_help_text = "Exact run id, or agent name"
    ordering = ("result", "bar_time", "id")

    @admin.display(description="message")
    def content_shown(self, message):
        return Truncator(message.message_content).chars(300)
