"""The trading desk's dashboard, a staff page beside the admin: today's runs, open positions,
realized P&L over time, each strategy's figures with its equity curve and drawdown, recent
decisions, and a price chart per code (those the trader chooses, else the first traded by an
active strategy) with its indicators, decisions, and the trades' entries and exits.

A handful of queries whatever the size of the tables: the counts are over today's executions
only, the charts read one cached market-data row per code (the newest of its bar size), and
the strategies' figures come from three aggregate reads for all of them.
"""

from collections import defaultdict
from datetime import datetime, time
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, OuterRef, Q, Subquery
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from marketdata.admin_charts import document_chart, price_chart_data
from marketdata.models import Code, MarketData, Timeframe
from marketdata.selectors import stored_bars_documents
from orders.models import Order, Trade, TradeExit
from orders.selectors import account_summary, exits_by_day, positions_list, trading_status
from performance.panels import strategy_panels
from strategies.models import Decision, Strategy
from strategies.services import trading_kill, trading_resume
from tradingsite.broker import BrokerError
from tradingsite.exceptions import ApplicationError
from workflows.models import ExecutionStatus, WorkflowExecution

CHART_BAR = "1 day"
CHART_TIMEFRAME = Timeframe.DAY_1
CHART_BARS = 180  # about nine months of daily bars
MAX_CHARTS = 8  # shown when none is chosen
MAX_CHOSEN = 20
MAX_STRATEGIES = 12
MAX_MARKS = 2000  # decisions, entries and exits read per page, newest first
RECENT_DECISIONS = 12


def executions_today(now=None):
    """Runs created since midnight UTC by status, and the share of finished ones that completed."""
    now = now or timezone.now()
    start = datetime.combine(now.date(), time(), tzinfo=now.tzinfo)
    counts = dict(
        WorkflowExecution.objects.filter(created_at__gte=start)
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    completed = counts.get(ExecutionStatus.COMPLETED, 0)
    finished = completed + counts.get(ExecutionStatus.FAILED, 0)
    return {
        "total": sum(counts.values()),
        "completed": completed,
        "failed": counts.get(ExecutionStatus.FAILED, 0),
        "running": counts.get(ExecutionStatus.RUNNING, 0) + counts.get(ExecutionStatus.PENDING, 0),
        "cancelled": counts.get(ExecutionStatus.CANCELLED, 0),
        "success_rate": round(100 * completed / finished) if finished else None,
    }


def realized_pnl_by_day(days):
    """[(day, that day's realized P&L net of fees, cumulative)] from ``exits_by_day``: each
    exit's P&L on its own day (UTC), so a trade closed over several days counts on each."""
    total = Decimal(0)
    rows = []
    for row in days:
        total += row["net"]
        rows.append((row["day"], row["net"], total))
    return rows


def chart_codes_default(limit=MAX_CHARTS):
    """The codes charted when none is chosen: the first ``limit`` traded by an active strategy."""
    return list(Code.objects.filter(strategies__active=True).distinct().order_by("symbol")[:limit])


class ChartChoice(forms.Form):
    """Which codes to chart (``?code=ID&code=ID``): any instrument the site knows."""

    code = forms.ModelMultipleChoiceField(
        queryset=Code.objects.order_by("symbol"), required=False, label="Chart these codes",
        help_text=f"Up to {MAX_CHOSEN}; none chosen: the first {MAX_CHARTS} an active strategy "
        "trades.",
    )  # fmt: skip

    def clean_code(self):
        codes = self.cleaned_data["code"]
        if len(codes) > MAX_CHOSEN:
            raise forms.ValidationError(f"At most {MAX_CHOSEN} codes at once.")
        return list(codes.order_by("symbol"))


def _fills(conids):
    """{conid: [(time, price, kind, label)]} of the trades' entries and exits on ``conids``,
    the newest ``MAX_MARKS`` of each."""
    marks = defaultdict(list)
    entries = (
        Trade.objects.filter(instrument_id__in=conids)
        .values_list("instrument_id", "entry_date", "entry_price", "order__side", "pk")
        .order_by("-entry_date")[:MAX_MARKS]
    )
    for conid, at, price, side, pk in entries:
        kind = "entry long" if side == "BUY" else "entry short"
        marks[conid].append((at, price, kind, f"trade #{pk} {kind} @ {price}"))
    exits = (
        TradeExit.objects.filter(trade__instrument_id__in=conids)
        .values_list(
            "trade__instrument_id", "exited_at", "price", "trade_id", "realized_pnl", "fees"
        )  # fmt: skip
        .order_by("-exited_at")[:MAX_MARKS]
    )
    for conid, at, price, trade_id, pnl, fees in exits:
        label = f"trade #{trade_id} exit @ {price}, net {pnl - fees}"
        marks[conid].append((at, price, "exit", label))
    return marks


def price_charts(codes):
    """A price chart for each of ``codes`` with the decisions on that code and the trades'
    entries and exits marked: its daily bars from the bar store (full all day, whatever the
    cache holds), else its newest cached daily bars."""
    # The SMA 200 of the first bar shown needs the 199 before it.
    stored = stored_bars_documents(codes=codes, timeframe=CHART_TIMEFRAME, last=CHART_BARS + 199)
    newest = (
        MarketData.objects.filter(conid=OuterRef("conid"), bar=CHART_BAR)
        .order_by("-created_at", "-id")
        .values("id")[:1]
    )
    rows = {
        row.conid: row
        for row in MarketData.objects.filter(
            conid__in=[c.conid for c in codes], bar=CHART_BAR
        ).filter(id=Subquery(newest))
    }
    charted = [c for c in codes if c.conid in rows or c.pk in stored]
    decisions = defaultdict(list)
    for decision in Decision.objects.filter(code__in=charted).order_by("-created_at")[:MAX_MARKS]:
        decisions[decision.code_id].append(decision)
    fills = _fills([c.conid for c in charted])
    charts = []
    for code in codes:
        row = rows.get(code.conid)
        if code.pk in stored:
            chart = document_chart(
                stored[code.pk], title=f"{code.symbol} - daily bars", decisions=decisions[code.pk],
                fills=fills[code.conid], last=CHART_BARS,
            )  # fmt: skip
            charts.append({"code": code, "chart": chart, "id": f"price-{code.pk}"})
            continue
        if row is None:
            charts.append({"code": code, "chart": None})
            continue
        chart = price_chart_data(
            row, decisions=decisions[code.pk], fills=fills[code.conid], symbol=code.symbol,
            last=CHART_BARS,
        )  # fmt: skip
        charts.append({"code": code, "chart": chart, "id": f"price-{code.pk}"})
    return charts


def strategies_shown():
    """The strategies whose performance the dashboard shows: the active ones and those with a
    trade, by name."""
    traded = Exists(Trade.objects.filter(strategy=OuterRef("pk")))
    return (
        Strategy.objects.filter(Q(active=True) | traded)
        .select_related("workflow")
        .order_by("name", "id")[:MAX_STRATEGIES]
    )


# What the dashboard shows, each of which the admin shows only to those who may view it.
PERMISSIONS = (
    "orders.view_position", "orders.view_trade", "strategies.view_decision",
    "strategies.view_strategy", "workflows.view_workflowexecution", "marketdata.view_marketdata",
)  # fmt: skip


def may_view(user):
    return user.is_active and user.is_staff and user.has_perms(PERMISSIONS)


@staff_member_required
def dashboard(request):
    if not may_view(request.user):
        raise PermissionDenied(
            "The dashboard shows positions, trades, decisions, strategies, runs and market "
            "data: it needs permission to view each."
        )
    positions = list(positions_list().filter(closed_at__isnull=True).order_by("symbol"))
    unrealized = sum((p.unrealized_pnl or Decimal(0) for p in positions), Decimal(0))
    days = exits_by_day()
    pnl = realized_pnl_by_day(days)
    order = Order.objects.filter(decision=OuterRef("pk"), parent_order__isnull=True)  # its entry
    order = order.values("pk")[:1]
    decisions = (
        Decision.objects.select_related("code", "strategy")
        .annotate(order_id=Subquery(order))
        .order_by("-created_at", "-id")[:RECENT_DECISIONS]
    )
    try:
        account, account_error = account_summary(), ""
    except BrokerError as exc:  # the page still shows what the database knows
        account, account_error = None, f"IB's account summary is not available: {exc}"
    strategies = Strategy.objects.aggregate(
        active=Count("id", filter=Q(active=True)), total=Count("id")
    )
    choice = ChartChoice(request.GET or None)
    chosen = choice.cleaned_data["code"] if choice.is_bound and choice.is_valid() else []
    context = {
        **admin.site.each_context(request),
        "title": "Trading dashboard",
        "today": executions_today(),
        "strategies": strategies,
        "account": account,
        "account_error": account_error,
        "positions": positions,
        "unrealized": unrealized,
        "realized_total": pnl[-1][2] if pnl else Decimal(0),
        "fees_total": sum((row["fees"] for row in days), Decimal(0)),
        "pnl_chart": {
            "labels": [day.isoformat() for day, _, _ in pnl],
            "daily": [str(value) for _, value, _ in pnl],
            "cumulative": [str(total) for _, _, total in pnl],
        },
        "decisions": decisions,
        "trading": trading_status(),
        "may_trade": request.user.has_perm("orders.change_order"),
        "charts": price_charts(chosen or chart_codes_default()),
        "chart_choice": choice,
        "performance": strategy_panels(strategies_shown()),
        "chart_bar": CHART_BAR,
        "running": WorkflowExecution.objects.filter(
            status__in=[ExecutionStatus.PENDING, ExecutionStatus.RUNNING]
        )
        .select_related("strategy")
        .order_by("-id")[:10],
    }
    return TemplateResponse(request, "dashboard.html", context)


def _trading_control(service, done):
    """The dashboard's kill switch and resume buttons (POST, after the browser's confirm)."""

    @staff_member_required
    def view(request):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("orders.change_order"):
            raise PermissionDenied("The kill switch needs permission to change orders.")
        try:
            action = service(request)
        except (ApplicationError, BrokerError) as refused:
            messages.error(request, str(refused))
        else:
            messages.success(request, f"{done} {action.detail}")
        return HttpResponseRedirect(reverse("dashboard"))

    return view


kill = _trading_control(
    lambda request: trading_kill(user=request.user, flatten=request.POST.get("flatten") == "1"),
    "Trading halted.",
)
resume = _trading_control(lambda request: trading_resume(user=request.user), "Trading resumed.")

urlpatterns = [
    path("", dashboard, name="dashboard"),
    path("kill/", kill, name="dashboard-kill"),
    path("resume/", resume, name="dashboard-resume"),
]
