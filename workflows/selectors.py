"""Reads of workflows, their runs and what the agents said, shaped for the API."""

from datetime import UTC, datetime, time, timedelta

from django.db.models import Avg, Count, F, Sum
from django.db.models.functions import TruncDate

from strategies.models import Decision
from tradingsite.querysets import built_once

from .models import AgentConversation, Workflow, WorkflowExecution, WorkflowMetrics


@built_once
def workflows_list():
    return Workflow.objects.annotate(
        current_version_number=F("current_version__version_number")
    ).order_by("name", "id")


def workflow_versions(*, workflow):
    return workflow.versions.order_by("-version_number")


@built_once
def executions_list():
    """Newest first: the id grows with creation and is the primary key's index."""
    return WorkflowExecution.objects.order_by("-id")


def conversation_of(*, execution):
    """The agents' messages in the order they were spoken."""
    return AgentConversation.objects.filter(workflow_execution=execution).order_by(
        "timestamp", "id"
    )


@built_once
def workflow_metrics_list():
    return WorkflowMetrics.objects.order_by("-date", "-id")


def agent_performance():
    """Per agent: messages, average tokens per message (of those that report tokens), and the
    decisions influenced, counted as the distinct decisions recorded by the executions the
    agent spoke in. Two queries whatever the number of agents or messages."""
    rows = (
        AgentConversation.objects.values("agent_name")
        .annotate(total_messages=Count("id"), average_tokens=Avg("tokens_used"))
        .order_by("agent_name")
    )
    agent = "workflow_execution__conversation__agent_name"
    influenced = dict(
        Decision.objects.filter(**{f"{agent}__isnull": False})
        .values(agent)
        .annotate(n=Count("id", distinct=True))
        .values_list(agent, "n")
    )
    return [{**row, "decisions_influenced": influenced.get(row["agent_name"], 0)} for row in rows]


def token_usage(*, since=None, until=None):
    """[{day, llm_model, messages, tokens_used}]: the tokens each model used per day (UTC),
    newest day first, from the messages that report them."""
    rows = AgentConversation.objects.filter(tokens_used__isnull=False)
    if since is not None:
        rows = rows.filter(timestamp__gte=datetime.combine(since, time(), tzinfo=UTC))
    if until is not None:
        end = datetime.combine(until + timedelta(days=1), time(), tzinfo=UTC)
        rows = rows.filter(timestamp__lt=end)
    return list(
        rows.annotate(day=TruncDate("timestamp", tzinfo=UTC))
        .values("day", "llm_model")
        .annotate(messages=Count("id"), tokens_used=Sum("tokens_used"))
        .order_by("-day", "llm_model")
    )


def probe_results_list():
    """Backtest results, newest first, without the (long) equity curve of each."""
    from .models import StrategyProbeResult

    return StrategyProbeResult.objects.order_by("-created_at", "-id")


def probe_result_detail():
    from django.db.models import Prefetch

    from .models import StrategyProbeResult, StrategyProbeTrade

    return StrategyProbeResult.objects.prefetch_related(
        Prefetch("trades", queryset=StrategyProbeTrade.objects.order_by("entry_time", "id"))
    )
