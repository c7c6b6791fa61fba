"""The AutoGen decision team: analysts talk in turn, the Executor answers with a decision.

Why this shape: a workflow step hands over a symbol and its cached market data per timeframe and
needs back one decision plus the whole conversation to store (``AgentConversation`` rows). The
agents are real ``autogen_agentchat`` assistants in a ``RoundRobinGroupChat``; the model behind
them is whatever ``ChatCompletionClient`` is given (the offline rules by default when no LLM is
configured), so tests exercise the same code path production runs.

Choices worth knowing:

- The Executor replies in plain text carrying one JSON object, which ``parse_decision`` reads;
  it does not use autogen's ``output_content_type``. With structured output a reply that does
  not validate raises inside the agent, the group chat aborts with an exception and the bad
  reply is lost, so it could neither be kept in the conversation nor corrected. Plain text also
  works with endpoints (Ollama, Gemini's OpenAI endpoint) whose structured-output support varies.
- A reply that cannot be parsed is answered by asking the Executor again (it keeps the whole
  conversation in its model context), quoting the reason, up to ``MAX_ATTEMPTS`` answers in all;
  re-running the analysts would cost their turns again and say nothing new.
- The Executor always speaks last in each round, whatever the order given, so every other agent
  (a "NewsAnalyst" too) has spoken before the team stops at the Executor's answer.
- A team that reaches ``max_rounds`` turns without the Executor's answer holds at the current
  price: no agreement reached means no trade.
"""

import asyncio
import contextvars
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.conditions import SourceMatchTermination
from autogen_agentchat.messages import BaseChatMessage, TextMessage
from autogen_agentchat.teams import RoundRobinGroupChat
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from .llm import model_client_from_settings, model_name
from .offline import MARKET_DATA_BEGIN, MARKET_DATA_END, role_marker

DEFAULT_AGENTS = ("TechnicalAnalyst", "RiskManager", "Executor")
EXECUTOR = "Executor"
ORCHESTRATOR = "Orchestrator"
MAX_ATTEMPTS = 3
RECENT_CLOSES = 5
INDICATORS = (
    "sma_20", "sma_50", "sma_200", "ema_12", "ema_26", "macd", "macd_signal", "macd_hist",
    "rsi_14", "atr_14", "bb_upper", "bb_middle", "bb_lower", "supertrend", "supertrend_direction",
)  # fmt: skip
_UNIT_SECONDS = {"sec": 1, "min": 60, "hour": 3600, "day": 86400, "week": 604800, "month": 2592000}

DECISION_FORMAT = (
    '{"type": "buy" | "sell" | "hold", "current_price": number, "target_price": number or null, '
    '"stop_loss": number or null, "confidence": number from 0 to 1, '
    '"analysis": "why, in a few sentences"}'
)
ROLE_PROMPTS = {
    "technical_analyst": (
        "You are {name}, the technical analyst of a trading desk deciding on one instrument. "
        "Look at each timeframe separately and name it by its bar size. Trend: close above or "
        "below SMA 50 and SMA 200, and the supertrend direction. Momentum: the sign of the MACD "
        "histogram, and RSI 14 (above 70 overbought, below 30 oversold). Quote the numbers, "
        "then say whether all timeframes agree."
    ),
    "risk_manager": (
        "You are {name}, the risk manager of a trading desk. From the shortest timeframe's last "
        "close and ATR 14, propose the stop at 2 x ATR (below a long, above a short) and targets "
        "at 2 x and 4 x ATR. If the timeframes do not agree, say that no position is warranted."
    ),
    "executor": (
        "You are {name}, who makes the desk's decision after hearing the others. Buy only when "
        "every timeframe is bullish, sell only when every timeframe is bearish, otherwise hold. "
        "Use the risk manager's stop (2 x ATR) and the 4 x ATR target. Reply with exactly one "
        "JSON object and no other text: " + DECISION_FORMAT + ". For a hold, target_price and "
        "stop_loss are null."
    ),
    "contributor": (
        "You are {name}, a specialist on a trading desk. In a few sentences, add what your "
        "speciality says about this decision, or say that you have nothing to add."
    ),
}
NAMED_ROLES = {"TechnicalAnalyst": "technical_analyst", "RiskManager": "risk_manager"}


class ExecutorDecision(BaseModel):
    """The Executor's answer as the team accepts it; anything else is a parse error."""

    type: Literal["buy", "sell", "hold"]
    current_price: Decimal = Field(gt=0, allow_inf_nan=False)
    target_price: Decimal | None = Field(default=None, gt=0, allow_inf_nan=False)
    stop_loss: Decimal | None = Field(default=None, gt=0, allow_inf_nan=False)
    # Optional: a model that does not say how sure it is still decides; one that says 1.7
    # has not answered the question, and its reply is refused like any other bad field.
    confidence: Decimal | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    analysis: str

    @field_validator("type", mode="before")
    @classmethod
    def _any_case(cls, value):
        # Models write "BUY" or "Hold" as readily as "buy".
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _levels_on_the_right_side(self):
        if self.type == "hold":
            # A hold places no order, so its levels mean nothing; kept, a stop at the price
            # would make the decision's reward-to-risk undefined and refuse the whole code.
            self.target_price = self.stop_loss = None
            return self
        if self.target_price is None or self.stop_loss is None:
            raise ValueError(f"a {self.type} needs both target_price and stop_loss")
        low, high = (
            (self.stop_loss, self.target_price)
            if self.type == "buy"
            else (self.target_price, self.stop_loss)
        )
        if not low < self.current_price < high:
            side = "stop < current < target" if self.type == "buy" else "target < current < stop"
            raise ValueError(f"a {self.type} needs {side}")
        return self


@dataclass
class ConversationRecord:
    """One message of the conversation, shaped like an ``AgentConversation`` row."""

    agent_name: str
    message_type: Literal["request", "response"]
    content: str
    timestamp: datetime
    tokens_used: int | None
    attempt: int
    llm_model: str = ""


@dataclass
class TeamOutcome:
    """What a workflow step stores: the decision (None after ``MAX_ATTEMPTS`` bad answers) and
    every message of every attempt, with the reasons the bad answers were refused."""

    decision: dict | None
    messages: list = field(default_factory=list)
    parse_errors: list = field(default_factory=list)
    attempts: int = 1
    stop_reason: str = ""
    llm_model: str = ""
    execution_time_ms: int | None = None  # the whole team's time, retries included
    last_reply: str | None = None  # the Executor's last answer, kept when it was unusable


def _decision_object(text):
    """``(object, None)`` for the first JSON object in ``text`` with a "type" key, or
    ``(None, reason)``.

    Every ``{`` is tried as the start of an object, so prose around it may hold braces of its
    own ("resistance at {150-152}", a risk manager's levels quoted as JSON) before or after.
    """
    decoder = json.JSONDecoder(parse_float=Decimal)
    first_error = None
    objects_without_type = False
    start = text.find("{")
    while start != -1:
        try:
            raw, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError as error:
            first_error = first_error or error
        else:
            if "type" in raw:
                return raw, None
            objects_without_type = True
        start = text.find("{", start + 1)
    if objects_without_type:
        return None, 'no JSON object with a "type" key in the reply'
    if first_error is not None:
        return None, f"invalid JSON ({first_error.msg} at character {first_error.pos})"
    return None, "no JSON object in the reply"


def parse_decision(text):
    """``(decision dict, None)`` or ``(None, reason)`` for one Executor reply.

    Lenient about wrapping (code fences, prose around the object, the type in any case, a hold
    without levels), strict about the decision itself. Numbers are read as Decimal straight
    from the text, so a price never passes through a float.
    """
    raw, reason = _decision_object(text)
    if raw is None:
        return None, reason
    try:
        decision = ExecutorDecision.model_validate(raw)
    except ValidationError as error:
        return None, "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'decision'}: {problem['msg']}"
            for problem in error.errors()
        )
    return decision.model_dump(), None


def _bar_seconds(bar):
    count, _, unit = bar.partition(" ")
    try:
        return int(count) * _UNIT_SECONDS[unit.rstrip("s")]
    except (KeyError, ValueError):
        return None


def _latest(series):
    return series[-1] if series else None


def market_snapshots(timeframes):
    """The latest values of each timeframe, shortest bar first (unknown bar sizes last)."""
    if not timeframes:
        raise ValueError("decide() needs at least one timeframe of market data")
    snapshots = []
    for bar, doc in timeframes.items():
        bars = doc.get("bars") or {}
        closes = bars.get("close") or []
        if not closes:
            raise ValueError(f"timeframe {bar!r} has no bars")
        indicators = doc.get("indicators") or {}
        snapshot = {
            "bar": bar,
            "bars": len(closes),
            "last_time": _latest(bars.get("time")),
            "close": closes[-1],
            "recent_closes": closes[-RECENT_CLOSES:],
        }
        snapshot.update({name: _latest(indicators.get(name)) for name in INDICATORS})
        snapshots.append(snapshot)
    # sorted() is stable: bar sizes it cannot read keep their given order, after the rest.
    seconds = {snapshot["bar"]: _bar_seconds(snapshot["bar"]) for snapshot in snapshots}
    return sorted(snapshots, key=lambda s: (seconds[s["bar"]] is None, seconds[s["bar"]] or 0))


def task_text(symbol, snapshots, instructions=""):
    """The request the team starts from; the market block is what every agent reads."""
    # One line per timeframe: readable in the admin, and no indentation for a model to pay for.
    rows = ",\n".join(json.dumps(snapshot) for snapshot in snapshots)
    market = f'{{"symbol": {json.dumps(symbol)}, "timeframes": [\n{rows}\n]}}'
    bars = ", ".join(snapshot["bar"] for snapshot in snapshots)
    parts = [
        f"Decide whether to buy, sell or hold {symbol}. Timeframes, shortest first: {bars}.",
        "Latest values per timeframe (null: the indicator is still warming up):",
        f"{MARKET_DATA_BEGIN}\n{market}\n{MARKET_DATA_END}",
    ]
    if instructions and instructions.strip():
        parts.append(f"Additional instructions: {instructions.strip()}")
    return "\n".join(parts)


def _speaking_order(agents):
    """Agent names with the decision maker last; it is "Executor", or else the last name."""
    names = list(DEFAULT_AGENTS if agents is None else agents)
    if not names:
        raise ValueError("the team needs at least one agent")
    executor = EXECUTOR if EXECUTOR in names else names[-1]
    names.remove(executor)
    return [*names, executor], executor


def _system_message(name, executor):
    role = "executor" if name == executor else NAMED_ROLES.get(name, "contributor")
    # Not str.format: the Executor's prompt quotes the JSON format, braces and all.
    return f"{ROLE_PROMPTS[role].replace('{name}', name)}\n{role_marker(role)}"


def _records(messages, attempt, llm_model=""):
    # TaskResult.messages also holds events (thoughts, tool calls): only chat messages are kept.
    records = []
    for message in messages:
        if not isinstance(message, BaseChatMessage):
            continue
        usage = message.models_usage
        records.append(
            ConversationRecord(
                agent_name=message.source,
                message_type="request" if message.source == ORCHESTRATOR else "response",
                content=message.to_text(),
                timestamp=message.created_at,
                tokens_used=usage.prompt_tokens + usage.completion_tokens if usage else None,
                attempt=attempt,
                llm_model=llm_model if usage else "",
            )
        )
    return records


def _reply_of(messages, name):
    replies = [m for m in messages if isinstance(m, BaseChatMessage) and m.source == name]
    return replies[-1].to_text() if replies else None


def _silent_hold(snapshots, max_rounds, stop_reason):
    return {
        "type": "hold",
        "current_price": Decimal(str(round(snapshots[0]["close"], 4))),
        "target_price": None,
        "stop_loss": None,
        "analysis": (
            f"No decision from the Executor within {max_rounds} turns ({stop_reason}); holding."
        ),
    }


async def decide_async(
    symbol, timeframes, *, agents=None, max_rounds=10, model_client=None, instructions="",
    model=None,
):  # fmt: skip
    """Run the team once for ``symbol`` and return its decision and conversation.

    ``max_rounds`` counts agent turns (autogen's ``max_turns``), so with three agents and
    ``max_rounds=2`` the Executor never gets to speak and the outcome is a hold. ``model``
    names the model instead of ``LLM_MODEL`` (the strategy's ``llm_model``).
    """
    snapshots = market_snapshots(timeframes)
    names, executor_name = _speaking_order(agents)
    owns_client = model_client is None
    if owns_client:
        model_client = model_client_from_settings(model=model)
    llm_model = model_name(model)
    began = time.perf_counter()
    try:
        outcome = await _converse(
            symbol, snapshots, names, executor_name, model_client, max_rounds=max_rounds,
            instructions=instructions, llm_model=llm_model,
        )  # fmt: skip
    finally:
        if owns_client:
            await model_client.close()
    outcome.execution_time_ms = round((time.perf_counter() - began) * 1000)
    return outcome


async def _converse(symbol, snapshots, names, executor_name, model_client, *, max_rounds,
                    instructions, llm_model):  # fmt: skip
    participants = [
        AssistantAgent(name, model_client, system_message=_system_message(name, executor_name))
        for name in names
    ]
    executor = participants[-1]
    team = RoundRobinGroupChat(
        participants,
        termination_condition=SourceMatchTermination([executor_name]),
        max_turns=max_rounds,
    )
    task = TextMessage(content=task_text(symbol, snapshots, instructions), source=ORCHESTRATOR)
    result = await team.run(task=task)
    outcome = TeamOutcome(
        decision=None, messages=_records(result.messages, 1, llm_model),
        stop_reason=result.stop_reason, llm_model=llm_model,
    )  # fmt: skip
    reply = _reply_of(result.messages, executor_name)
    if reply is None:
        outcome.decision = _silent_hold(snapshots, max_rounds, result.stop_reason)
        return outcome
    while True:
        outcome.decision, reason = parse_decision(reply)
        if outcome.decision is not None:
            return outcome
        outcome.parse_errors.append(f"attempt {outcome.attempts}: {reason}")
        outcome.last_reply = reply
        if outcome.attempts == MAX_ATTEMPTS:
            return outcome
        outcome.attempts += 1
        again = TextMessage(
            content=(
                f"Your reply could not be used as a decision: {reason}. Reply again with "
                f"exactly one JSON object and no other text: {DECISION_FORMAT}"
            ),
            source=ORCHESTRATOR,
        )
        retry = await executor.run(task=again)
        outcome.messages += _records(retry.messages, outcome.attempts, llm_model)
        reply = _reply_of(retry.messages, executor_name) or ""


def decide(symbol, timeframes, *, agents=None, max_rounds=10, model_client=None, instructions="",
           model=None):  # fmt: skip
    """Synchronous ``decide_async`` for Celery tasks and management commands.

    Trap: a client passed in is used on this call's event loop; an HTTP client (OpenAI) keeps
    connections bound to the loop that opened them, so do not share one across ``decide`` calls.
    Leave ``model_client`` out and each call builds and closes its own.
    """
    run = decide_async(
        symbol,
        timeframes,
        agents=agents,
        max_rounds=max_rounds,
        model_client=model_client,
        instructions=instructions,
        model=model,
    )
    return run_isolated(run)


def run_isolated(coroutine):
    """Run ``coroutine`` to completion on a fresh loop in a thread of its own, and wait.

    Traps: ``asyncio.run`` refuses inside a running loop (an async view, a notebook); and in
    the caller's thread it would close and unset that thread's event loop, which the broker's
    ib_insync connection lives on. A thread of its own touches neither.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        # The caller's context goes with it (a backtest's replayed replies, ``replay.py``).
        return pool.submit(contextvars.copy_context().run, asyncio.run, coroutine).result()
