"""The decision audit (seed 002): every decision says how it came about (status, the reason
when the model's reply was unusable or the model could not be asked), how sure the model was,
which model decided and how long it took; and the tokens each model used per day."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from marketdata.models import MarketData
from marketdata.tests.factories import CodeFactory, cache_run_bars
from orders.models import Order
from strategies.models import Decision
from tradingsite.exceptions import ApplicationError
from tradingsite.testing.api import APITestCase
from tradingsite.testing.factories import ExecutionFactory, make_decision
from workflows.agents import analyze, team
from workflows.agents.offline import OfflineChatCompletionClient, _role
from workflows.models import AgentConversation, ExecutionStatus
from workflows.services import (
    execution_prepare,
    execution_run,
    strategy_create,
    workflow_create,
    workflow_metrics_compute,
)
from workflows.templates import TEMPLATES

pytestmark = pytest.mark.django_db

ANALYZE_STEPS = [
    {"type": "fetch_data", "config": {"period": "1 Y", "bar": "1 day", "indicators": ["atr_14"]}},
    {"type": "fetch_data", "config": {"period": "2 Y", "bar": "1 week"}},
    {"type": "ai_analyze", "config": {"prompt_template": "Analyse {symbol}."}},
    {"type": "decide", "config": {}},
    *TEMPLATES["two_indicator"]["steps"][-3:],  # risk gate, order, wait
]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def strategy_on(trend, *, steps=None, param=None):
    code = CodeFactory(symbol="FLAT" if trend == "flat" else "UPCO")
    cache_run_bars(code, trend=trend)
    workflow = None
    if steps is not None:
        defaults = TEMPLATES["two_indicator"]["default_params"]
        workflow = workflow_create(name="analyse", steps=steps, default_params=defaults)
    kind = "two_indicator" if workflow is None else workflow.type  # a strategy follows its workflow
    return strategy_create(name="Audit", type=kind, workflow=workflow,
                           param=param or {}, codes=[code])  # fmt: skip


def run(strategy):
    execution = execution_prepare(strategy=strategy, dry_run=True)
    return execution_run(execution_id=execution.pk, dry_run=True)


def last_close(code):
    close = MarketData.objects.get(conid=code.conid, bar="1 day").data["bars"]["close"][-1]
    return Decimal(str(round(close, 4)))


class ExecutorSays(OfflineChatCompletionClient):
    """The offline analysts, and an Executor (or single analyst) whose answer is ``reply``."""

    def __init__(self, reply, **_):
        super().__init__()
        self.reply = reply

    def _answer(self, messages):
        return self.reply if _role(messages) == "executor" else super()._answer(messages)


class Unreachable(OfflineChatCompletionClient):
    async def create(self, messages, **kwargs):
        raise ConnectionError("Connection refused by 127.0.0.1:11434")


def test_the_teams_decision_keeps_its_confidence_model_and_time():
    strategy = strategy_on("flat")
    execution = run(strategy)

    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    decision = Decision.objects.get()
    assert (decision.type, decision.status, decision.error_message) == ("hold", "success", None)
    assert decision.llm_model == "offline"  # no LLM_BASE_URL: the offline rules' model
    # The offline rules' confidence in a hold: how evenly their votes balance (README).
    assert decision.confidence is not None and Decimal(0) <= decision.confidence <= 1
    assert decision.execution_time_ms is not None and decision.execution_time_ms >= 0
    spoken = AgentConversation.objects.filter(message_type="response")
    assert set(spoken.values_list("llm_model", flat=True)) == {"offline"}


def test_a_confidence_of_1_7_is_a_parsing_error_row_and_no_order(monkeypatch):
    reply = json.dumps({"type": "hold", "current_price": 100, "confidence": 1.7,
                        "analysis": "Very, very sure."})  # fmt: skip
    monkeypatch.setattr(team, "model_client_from_settings", lambda **_: ExecutorSays(reply))
    strategy = strategy_on("flat")
    execution = run(strategy)

    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    decision = Decision.objects.get()
    assert (decision.type, decision.status, decision.confidence) == ("hold", "parsing_error", None)
    assert decision.error_message == "; ".join(
        f"attempt {n}: confidence: Input should be less than or equal to 1" for n in (1, 2, 3)
    )
    assert decision.analysis_text == reply  # the model's last answer, for the audit
    assert decision.current_price == last_close(strategy.codes.get())
    assert not Order.objects.exists()
    log = [line["message"] for line in execution.results["execution_logs"]]
    assert f"decision {decision.pk} recorded as parsing_error: {decision.error_message}" in log


def test_an_unreadable_single_analysis_is_a_parsing_error_row(monkeypatch):
    monkeypatch.setattr(
        analyze, "model_client_from_settings", lambda **_: ExecutorSays("Looks bullish to me.")
    )
    strategy = strategy_on("flat", steps=ANALYZE_STEPS)
    run(strategy)

    decision = Decision.objects.get()
    assert (decision.status, decision.error_message) == (
        "parsing_error",
        "no JSON object in the reply",
    )
    assert decision.analysis_text == "Looks bullish to me."
    assert decision.llm_model == "offline" and decision.execution_time_ms >= 0


@pytest.mark.parametrize(
    "steps",
    [TEMPLATES["two_indicator"]["steps"], ANALYZE_STEPS],
    ids=["autogen_team", "ai_analyze"],
)
def test_a_model_that_cannot_be_asked_is_a_failed_decision(monkeypatch, steps):
    for module in (team, analyze):
        monkeypatch.setattr(module, "model_client_from_settings", lambda **_: Unreachable())
    strategy = strategy_on("flat", steps=steps)
    execution = run(strategy)

    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    decision = Decision.objects.get()
    assert (decision.type, decision.status) == ("hold", "failed")
    assert decision.error_message == "ConnectionError: Connection refused by 127.0.0.1:11434"
    assert not Order.objects.exists()
    (metrics,) = workflow_metrics_compute(day=execution.started_at.date())
    assert (metrics.metrics["model_failures"], metrics.metrics["parse_errors"]) == (1, 0)


@pytest.mark.parametrize("steps", [None, ANALYZE_STEPS], ids=["autogen_team", "ai_analyze"])
def test_both_agent_steps_ask_the_model_the_strategy_names(monkeypatch, settings, steps):
    settings.LLM_BASE_URL, settings.LLM_MODEL = "http://127.0.0.1:11434/v1", "llama3.1"
    asked = []

    def client(**kwargs):  # the endpoint is the network edge: the offline rules answer
        asked.append(kwargs.get("model"))
        return OfflineChatCompletionClient()

    for module in (team, analyze):
        monkeypatch.setattr(module, "model_client_from_settings", client)
    strategy = strategy_on("flat", steps=steps, param={"llm_model": "qwen2.5:14b"})
    run(strategy)

    assert asked == ["qwen2.5:14b"]
    decision = Decision.objects.get()
    assert (decision.status, decision.llm_model) == ("success", "qwen2.5:14b")
    models = AgentConversation.objects.exclude(tokens_used=None).values_list("llm_model", flat=True)
    assert set(models) == {"qwen2.5:14b"}


def test_a_confidence_outside_0_to_1_is_refused_by_the_service_and_the_database():
    with pytest.raises(ApplicationError) as refused:
        make_decision(confidence="1.7")
    assert refused.value.extra == {"confidence": "1.7 is not between 0.00 and 1.00."}
    with pytest.raises(ApplicationError) as refused:
        make_decision(status="maybe")
    assert "status" in refused.value.extra
    decision = make_decision(confidence="0.855")
    assert decision.confidence == Decimal("0.86")  # the column's two places
    for column, value in (("confidence", Decimal("1.5")), ("status", "guess"),
                          ("execution_time_ms", -1)):  # fmt: skip
        with pytest.raises(IntegrityError), transaction.atomic():
            Decision.objects.filter(pk=decision.pk).update(**{column: value})


class TestAgentUsage(APITestCase):
    url = "/api/agents/usage/"

    def message(self, execution, model, tokens, day, hour=12):
        return AgentConversation.objects.create(
            workflow_execution=execution, agent_name="Executor", message_type="response",
            message_content="...", tokens_used=tokens, llm_model=model,
            timestamp=datetime(2025, 3, day, hour, tzinfo=UTC),
        )  # fmt: skip

    def test_tokens_are_summed_per_model_and_day(self, reader_client):
        execution = ExecutionFactory()
        self.message(execution, "llama3.1", 100, 13)
        self.message(execution, "llama3.1", 250, 13, hour=23)
        self.message(execution, "offline", 40, 13)
        self.message(execution, "llama3.1", 7, 14, hour=0)
        self.message(execution, "llama3.1", None, 14)  # a request: no tokens reported

        body = reader_client.get(self.url).json()
        assert body == [
            {"day": "2025-03-14", "llm_model": "llama3.1", "messages": 1, "tokens_used": 7},
            {"day": "2025-03-13", "llm_model": "llama3.1", "messages": 2, "tokens_used": 350},
            {"day": "2025-03-13", "llm_model": "offline", "messages": 1, "tokens_used": 40},
        ]
        narrowed = reader_client.get(self.url, {"since": "2025-03-14", "until": "2025-03-14"})
        assert [row["tokens_used"] for row in narrowed.json()] == [7]

    def test_bad_dates_are_a_400_naming_them(self, reader_client, anonymous):
        refused = reader_client.get(self.url, {"since": "yesterday"})
        assert refused.status_code == 400 and "since" in refused.json()["errors"]
        refused = reader_client.get(self.url, {"since": "2025-03-14", "until": "2025-03-13"})
        assert refused.json()["errors"] == {"until": ["Must not be before since."]}
        assert anonymous.get(self.url).status_code in (401, 403)
