"""One model call that analyses a code (the ``ai_analyze`` step), and the indicator rules
alone (the ``decide`` step when no model took part)."""

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .llm import model_client_from_settings, model_name
from .offline import assess, executor_decision, role_marker
from .team import (
    DECISION_FORMAT,
    ConversationRecord,
    market_snapshots,
    parse_decision,
    run_isolated,
    task_text,
)

ANALYST = "Analyst"
SYSTEM = (
    "You are a trading analyst. Read the market data, explain your view in a few sentences, "
    "and end with your decision as one JSON object: " + DECISION_FORMAT
)


@dataclass
class AnalysisOutcome:
    text: str
    decision: dict | None
    parse_error: str | None
    messages: list = field(default_factory=list)
    llm_model: str = ""
    execution_time_ms: int | None = None


def analyze(symbol, timeframes, *, prompt_template, model=None, temperature=None,
            max_tokens=None, model_client=None):  # fmt: skip
    """Ask the model once; ``{symbol}`` in the template is the code's symbol."""
    from autogen_core.models import SystemMessage, UserMessage

    snapshots = market_snapshots(timeframes)
    prompt = prompt_template.replace("{symbol}", symbol) + "\n\n" + task_text(symbol, snapshots)
    own_client = model_client is None
    client = model_client or model_client_from_settings(
        temperature=temperature, max_tokens=max_tokens, model=model
    )
    # The role marker tells the offline model to answer as the decision maker; a real model
    # reads it as an inert tag.
    messages = [
        SystemMessage(content=f"{SYSTEM}\n{role_marker('executor')}"),
        UserMessage(content=prompt, source="user"),
    ]
    asked = datetime.now(UTC)
    began = time.perf_counter()

    async def call():
        try:
            return await client.create(messages)
        finally:
            if own_client:
                await client.close()

    result = run_isolated(call())
    elapsed = round((time.perf_counter() - began) * 1000)
    text = result.content if isinstance(result.content, str) else str(result.content)
    decision, error = parse_decision(text)
    usage = result.usage
    name = model_name(model)
    records = [
        ConversationRecord(ANALYST, "request", prompt, asked, usage.prompt_tokens, 1, name),
        ConversationRecord(
            ANALYST, "response", text, datetime.now(UTC), usage.completion_tokens, 1, name
        ),
    ]
    return AnalysisOutcome(text=text, decision=decision, parse_error=error, messages=records,
                           llm_model=name, execution_time_ms=elapsed)  # fmt: skip


def rules_decision(symbol, timeframes):
    """The offline Executor's rules applied directly, with no conversation."""
    market = {"symbol": symbol, "timeframes": market_snapshots(timeframes)}
    return executor_decision(assess(market))
