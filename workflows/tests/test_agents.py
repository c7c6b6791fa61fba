"""The decision team runs for real through autogen, on the offline rules or any model client."""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from autogen_ext.models.openai import OpenAIChatCompletionClient
from autogen_ext.models.replay import ReplayChatCompletionClient

from marketdata.tests.factories import CodeFactory, cache_market_data
from orders.models import Order
from strategies.models import Decision
from workflows.agents import team
from workflows.agents.llm import model_client_from_settings
from workflows.agents.offline import OfflineChatCompletionClient
from workflows.agents.team import decide, parse_decision
from workflows.models import ExecutionStatus
from workflows.services import execution_prepare, execution_run, strategy_create

BARS = 220
DAY_ATR = 1.5
WEEK_ATR = 4.0


def sma(closes, period):
    return [
        None if i + 1 < period else sum(closes[i + 1 - period : i + 1]) / period
        for i in range(len(closes))
    ]


def market_doc(closes, *, atr, macd_hist, supertrend, rsi=58.0):
    """A cached market-data doc: SMAs computed from the closes, the rest held after warm-up."""
    n = len(closes)

    def held(warmup, value):
        return [None] * warmup + [value] * (n - warmup)

    start = datetime(2024, 1, 1, tzinfo=UTC)
    return {
        "bars": {
            "time": [(start + timedelta(days=i)).isoformat() for i in range(n)],
            "open": closes,
            "high": [c + 1 for c in closes],
            "low": [c - 1 for c in closes],
            "close": closes,
            "volume": [1000] * n,
        },
        "indicators": {
            "sma_20": sma(closes, 20),
            "sma_50": sma(closes, 50),
            "sma_200": sma(closes, 200),
            "macd_hist": held(33, macd_hist),
            "rsi_14": held(14, rsi),
            "atr_14": held(14, atr),
            "supertrend_direction": held(10, supertrend),
        },
    }


def rising(atr, **overrides):
    # Up half a point a bar with a pullback every fourth bar: clearly rising, not a ruler.
    closes = [100 + 0.5 * i - (0.75 if i % 4 == 3 else 0) for i in range(BARS)]
    return market_doc(closes, atr=atr, **{"macd_hist": 0.4, "supertrend": 1, **overrides})


def falling(atr, **overrides):
    closes = [300 - 0.5 * i + (0.75 if i % 4 == 3 else 0) for i in range(BARS)]
    return market_doc(closes, atr=atr, **{"macd_hist": -0.4, "supertrend": -1, **overrides})


def last_close(doc):
    return doc["bars"]["close"][-1]


def price(value):
    return Decimal(str(round(value, 4)))


def speakers(outcome):
    return [record.agent_name for record in outcome.messages]


def test_rising_market_buys_with_stop_and_target_from_the_daily_atr():
    day, week = rising(DAY_ATR), rising(WEEK_ATR)
    # Weekly given first on purpose: the shortest bar (1 day) sets the risk levels.
    outcome = decide(
        "AAPL", {"1 week": week, "1 day": day}, model_client=OfflineChatCompletionClient()
    )

    close = last_close(day)
    assert outcome.decision == {
        "type": "buy",
        "current_price": price(close),
        "target_price": price(close + 4 * DAY_ATR),
        "stop_loss": price(close - 2 * DAY_ATR),
        "confidence": Decimal("1.0"),  # every vote of the one timeframe is bullish
        "analysis": outcome.decision["analysis"],
    }
    assert "every timeframe is bullish" in outcome.decision["analysis"]
    assert outcome.parse_errors == [] and outcome.attempts == 1
    assert outcome.stop_reason == "'Executor' answered"

    assert speakers(outcome) == ["Orchestrator", "TechnicalAnalyst", "RiskManager", "Executor"]
    request, *responses = outcome.messages
    assert request.message_type == "request" and request.tokens_used is None
    assert "BEGIN MARKET DATA" in request.content
    assert {r.message_type for r in responses} == {"response"}
    assert all(r.tokens_used > 0 for r in responses)
    # Each turn's prompt holds the whole conversation so far, so usage grows turn by turn.
    assert responses[0].tokens_used < responses[1].tokens_used < responses[2].tokens_used
    assert all(r.timestamp.utcoffset() == timedelta(0) for r in outcome.messages)

    analysis = responses[0].content
    assert "- 1 day: trend bullish" in analysis and "- 1 week: trend bullish" in analysis
    assert analysis.index("- 1 day") < analysis.index("- 1 week")
    assert f"stop {close - 2 * DAY_ATR:g}" in responses[1].content
    assert json.loads(responses[2].content)["type"] == "buy"


def test_falling_market_sells_with_the_stop_above():
    day, week = falling(DAY_ATR), falling(WEEK_ATR)
    outcome = decide(
        "AAPL", {"1 day": day, "1 week": week}, model_client=OfflineChatCompletionClient()
    )

    close = last_close(day)
    decision = outcome.decision
    assert decision["type"] == "sell"
    assert decision["current_price"] == price(close)
    assert decision["stop_loss"] == price(close + 2 * DAY_ATR) > decision["current_price"]
    assert decision["target_price"] == price(close - 4 * DAY_ATR)


@pytest.mark.parametrize(
    "day, week, reason",
    [
        (rising(DAY_ATR), falling(WEEK_ATR), "1 day bullish, 1 week bearish"),
        # Rising everywhere, but the daily RSI is overbought: rule 4 does not chase it.
        (rising(DAY_ATR, rsi=78.0), rising(WEEK_ATR), "1 day neutral, 1 week bullish"),
    ],
    ids=["timeframes-disagree", "overbought"],
)
def test_no_agreement_holds_at_the_current_price(day, week, reason):
    outcome = decide(
        "AAPL", {"1 day": day, "1 week": week}, model_client=OfflineChatCompletionClient()
    )

    assert outcome.decision["type"] == "hold"
    assert outcome.decision["current_price"] == price(last_close(day))
    assert outcome.decision["target_price"] is None and outcome.decision["stop_loss"] is None
    assert reason in outcome.decision["analysis"]


def test_a_fourth_agent_speaks_before_the_executor_decides():
    outcome = decide(
        "AAPL",
        {"1 day": rising(DAY_ATR)},
        agents=["TechnicalAnalyst", "RiskManager", "Executor", "NewsAnalyst"],
        model_client=OfflineChatCompletionClient(),
    )

    assert speakers(outcome)[1:] == ["TechnicalAnalyst", "RiskManager", "NewsAnalyst", "Executor"]
    assert outcome.messages[3].tokens_used > 0
    assert outcome.decision["type"] == "buy"


def test_one_garbled_answer_is_asked_again_and_decided_on_attempt_two():
    day = rising(DAY_ATR)
    outcome = decide(
        "AAPL", {"1 day": day}, model_client=OfflineChatCompletionClient(garbled_replies=1)
    )

    assert outcome.attempts == 2
    assert outcome.parse_errors == ["attempt 1: no JSON object in the reply"]
    assert outcome.decision["type"] == "buy"
    assert outcome.decision["stop_loss"] == price(last_close(day) - 2 * DAY_ATR)
    assert speakers(outcome) == [
        "Orchestrator", "TechnicalAnalyst", "RiskManager", "Executor", "Orchestrator", "Executor",
    ]  # fmt: skip
    retry_request, retry_answer = outcome.messages[-2:]
    assert retry_request.message_type == "request" and retry_request.attempt == 2
    assert "no JSON object in the reply" in retry_request.content
    assert retry_answer.message_type == "response" and retry_answer.tokens_used > 0


def test_three_garbled_answers_give_no_decision_and_three_reasons():
    outcome = decide(
        "AAPL",
        {"1 day": rising(DAY_ATR)},
        model_client=OfflineChatCompletionClient(garbled_replies=3),
    )

    assert outcome.decision is None
    assert outcome.attempts == 3
    assert outcome.parse_errors == [
        "attempt 1: no JSON object in the reply",
        "attempt 2: decision: Value error, a buy needs both target_price and stop_loss",
        "attempt 3: type: Input should be 'buy', 'sell' or 'hold'",
    ]
    assert [r.agent_name for r in outcome.messages].count("Executor") == 3


def test_max_rounds_stops_the_team_before_the_executor_and_holds():
    day = rising(DAY_ATR)
    outcome = decide(
        "AAPL", {"1 day": day}, max_rounds=2, model_client=OfflineChatCompletionClient()
    )

    assert speakers(outcome) == ["Orchestrator", "TechnicalAnalyst", "RiskManager"]
    assert outcome.stop_reason == "Maximum number of turns 2 reached."
    assert outcome.decision["type"] == "hold"
    assert outcome.decision["current_price"] == price(last_close(day))
    assert "within 2 turns" in outcome.decision["analysis"]


def test_a_replayed_client_drives_the_same_team_and_sees_the_instructions():
    client = ReplayChatCompletionClient(
        [
            "Daily trend up.",
            "Stop 2 x ATR below.",
            '```json\n{"type": "buy", "current_price": 209.25, "target_price": 215.25,'
            ' "stop_loss": 206.25, "analysis": "Trend up on the daily."}\n```',
        ]
    )
    outcome = decide(
        "AAPL",
        {"1 day": rising(DAY_ATR)},
        model_client=client,
        instructions="Prefer no trade before earnings.",
    )

    # Any ChatCompletionClient drives the same team: the replayed answers come back in turn.
    assert [r.content for r in outcome.messages[1:3]] == ["Daily trend up.", "Stop 2 x ATR below."]
    assert outcome.decision == {
        "type": "buy",
        "current_price": Decimal("209.25"),
        "target_price": Decimal("215.25"),
        "stop_loss": Decimal("206.25"),
        "confidence": None,  # the model did not say
        "analysis": "Trend up on the daily.",
    }
    first_prompt = client.create_calls[0]["messages"]
    assert "TechnicalAnalyst" in first_prompt[0].content
    assert "Prefer no trade before earnings." in first_prompt[-1].content


@pytest.mark.parametrize(
    "reply, reason",
    [
        ("I would buy around 10.", "no JSON object in the reply"),
        ('{"type": "buy", "current_price": 10', "invalid JSON (Expecting ',' delimiter"),
        ("{'type': 'buy'}", "invalid JSON"),
        ('Levels: {"stop": 9, "target": 12}', 'no JSON object with a "type" key'),
        ('{"type": "strong buy", "current_price": 10, "analysis": ""}',
         "type: Input should be 'buy', 'sell' or 'hold'"),
        ('{"type": "buy", "current_price": NaN, "target_price": 12, "stop_loss": 9, '
         '"analysis": ""}', "current_price: Input should be a finite number"),
        ('{"type": "buy", "current_price": 10, "target_price": Infinity, "stop_loss": 9, '
         '"analysis": ""}', "target_price: Input should be a finite number"),
        ('{"type": "sell", "current_price": 10, "target_price": 8, "stop_loss": -11, '
         '"analysis": ""}', "stop_loss: Input should be greater than 0"),
        ('{"type": "hold", "current_price": -10, "analysis": ""}',
         "current_price: Input should be greater than 0"),
        ('{"type": "BUY", "current_price": 10, "target_price": 12, "analysis": ""}',
         "a buy needs both target_price and stop_loss"),
        ('{"type": "buy", "current_price": "ten", "target_price": 12, "stop_loss": 9, '
         '"analysis": ""}', "current_price: Input should be a valid decimal"),
        ('{"type": "buy", "current_price": 10, "target_price": 9, "stop_loss": 8, '
         '"analysis": ""}', "a buy needs stop < current < target"),
        ('{"type": "sell", "current_price": 10, "target_price": null, "stop_loss": 11, '
         '"analysis": ""}', "a sell needs both target_price and stop_loss"),
        ('{"type": "hold", "current_price": 10, "confidence": 1.7, "analysis": ""}',
         "confidence: Input should be less than or equal to 1"),
        ('{"type": "hold", "current_price": 10, "confidence": -0.1, "analysis": ""}',
         "confidence: Input should be greater than or equal to 0"),
        ('{"type": "hold", "current_price": 10, "confidence": "sure", "analysis": ""}',
         "confidence: Input should be a valid decimal"),
    ],
)  # fmt: skip
def test_replies_that_are_not_decisions_are_refused_with_a_reason(reply, reason):
    decision, error = parse_decision(reply)

    assert decision is None
    assert reason in error


BUY_JSON = (
    '{"type": "buy", "current_price": 150, "target_price": 160, "stop_loss": 145, '
    '"analysis": "Trend up."}'
)


@pytest.mark.parametrize(
    "reply",
    [
        BUY_JSON.replace('"buy"', '"BUY"'),
        BUY_JSON.replace('"buy"', '"Buy"'),
        f"I see resistance at {{150-152}}. Decision:\n```json\n{BUY_JSON}\n```",
        f'Risk levels: {{"stop": 145, "target": 160}}\n{BUY_JSON}',
        f"{BUY_JSON} (levels per {{RiskManager}})",
        f'{{"decision": {BUY_JSON}}}',
    ],
    ids=["upper-case", "capitalised", "braces-before", "object-before", "braces-after", "wrapped"],
)
def test_a_decision_is_found_in_the_prose_real_models_write(reply):
    decision, error = parse_decision(reply)

    assert error is None
    assert decision == {
        "type": "buy",
        "current_price": Decimal("150"),
        "target_price": Decimal("160"),
        "stop_loss": Decimal("145"),
        "confidence": None,
        "analysis": "Trend up.",
    }


@pytest.mark.parametrize(
    "reply",
    [
        '{"type": "Hold", "current_price": 150, "analysis": "No edge."}',
        '{"type": "HOLD", "current_price": 150, "target_price": null, "stop_loss": null, '
        '"analysis": "No edge."}',
        # A hold places no order: levels a model adds anyway are dropped, even a stop at the
        # price (whose reward-to-risk is undefined).
        '{"type": "hold", "current_price": 150, "target_price": 160, "stop_loss": 150, '
        '"analysis": "No edge."}',
    ],
    ids=["no-levels", "null-levels", "stop-at-the-price"],
)
def test_a_hold_needs_no_levels_and_keeps_none(reply):
    decision, error = parse_decision(reply)

    assert error is None
    assert decision == {
        "type": "hold",
        "current_price": Decimal("150"),
        "target_price": None,
        "stop_loss": None,
        "confidence": None,
        "analysis": "No edge.",
    }


def replayed_team(monkeypatch, executor_reply):
    """The engine's team on autogen's replay client: analysts' turns, then ``executor_reply``."""
    monkeypatch.setattr(
        team,
        "model_client_from_settings",
        lambda **_: ReplayChatCompletionClient(["Mixed trend.", "No clear stop.", executor_reply]),
    )


@pytest.mark.django_db
def test_a_hold_with_its_stop_at_the_price_is_recorded_without_levels(
    monkeypatch, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path  # the run draws its charts there
    code = CodeFactory(symbol="FLAT")
    daily = cache_market_data(code, period="1 Y", bar="1 day", trend="flat")
    cache_market_data(code, period="2 Y", bar="1 week", trend="flat")
    strategy = strategy_create(name="Flat", type="two_indicator", param={}, codes=[code])
    close = round(daily.data["bars"]["close"][-1], 2)
    replayed_team(
        monkeypatch,
        f'{{"type": "hold", "current_price": {close}, "target_price": {close + 5}, '
        f'"stop_loss": {close}, "analysis": "No edge either way."}}',
    )

    started = execution_prepare(strategy=strategy, dry_run=True)
    execution = execution_run(execution_id=started.pk, dry_run=True)

    log = [line["message"] for line in execution.results["execution_logs"]]
    assert execution.status == ExecutionStatus.COMPLETED, log
    assert execution.results["failed_symbols"] == []
    assert not any("failed" in line for line in log)
    decision = Decision.objects.get(workflow_execution=execution)
    assert (decision.type, decision.current_price) == ("hold", Decimal(str(close)))
    assert decision.target_price is None and decision.stop_loss is None
    assert decision.r_coefficient is None and decision.profit_margin is None
    assert decision.analysis_text == "No edge either way."
    assert not Order.objects.exists()


def test_decide_works_when_called_inside_a_running_loop():
    async def caller():
        return decide(
            "AAPL", {"1 day": falling(DAY_ATR)}, model_client=OfflineChatCompletionClient()
        )

    assert asyncio.run(caller()).decision["type"] == "sell"


def test_without_an_llm_endpoint_the_team_uses_the_offline_rules(settings):
    settings.LLM_BASE_URL = ""

    assert isinstance(model_client_from_settings(), OfflineChatCompletionClient)
    assert decide("AAPL", {"1 day": rising(DAY_ATR)}).decision["type"] == "buy"


def test_an_llm_endpoint_gets_an_openai_compatible_client(settings):
    settings.LLM_BASE_URL = "http://127.0.0.1:11434/v1"
    settings.LLM_MODEL = "llama3.1"
    settings.LLM_API_KEY = ""

    client = model_client_from_settings(temperature=0.2, max_tokens=800)

    assert isinstance(client, OpenAIChatCompletionClient)
    config = client.dump_component().config
    assert config["base_url"] == "http://127.0.0.1:11434/v1"
    assert config["model"] == "llama3.1"
    assert (config["temperature"], config["max_tokens"]) == (0.2, 800)
    assert client.model_info["family"] == "unknown"
    assert client.model_info["function_calling"] is False
