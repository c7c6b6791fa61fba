"""A deterministic stand-in language model that reasons from the indicators.

Why: the decision team must run for real (real AutoGen agents, real group chat) in tests, in
demos and on machines with no LLM endpoint, and give the same answer for the same market every
time. So this client implements autogen's ``ChatCompletionClient`` and answers each agent from
fixed, documented rules applied to the market data block of the team's task.

Who is speaking: every agent's system message carries a role marker ``<<role:NAME>>`` (see
``role_marker``); the client reads the last marker among the system messages. Roles:
``technical_analyst``, ``risk_manager``, ``executor``; any other role gets a short note that it
has nothing to add offline. The market data is the JSON between ``MARKET_DATA_BEGIN`` and
``MARKET_DATA_END`` in the conversation; timeframes come in it shortest first.

Rules, for each timeframe separately (named by its bar size), on the latest value of each
series; a missing value (indicator still warming up) abstains:

1. Trend votes, +1 bullish / -1 bearish each: close above / below SMA 50; close above / below
   SMA 200; supertrend direction +1 / -1. Trend is bullish when the votes sum above zero,
   bearish below zero, neutral at zero.
2. Momentum: MACD histogram above zero bullish, below zero bearish, otherwise neutral.
3. RSI 14 zone: above 70 overbought, below 30 oversold, otherwise neutral.
4. The timeframe is bullish when trend and momentum are both bullish and RSI is not overbought
   (an overbought market is not chased); bearish when both are bearish and RSI is not oversold
   (an oversold market is not sold into); neutral otherwise.

Decision: buy when every timeframe is bullish, sell when every timeframe is bearish, hold
otherwise (no agreement means hold).

Risk, from the shortest timeframe's last close and ATR 14: a long's stop is close - 2 x ATR with
targets close + 2 x ATR (1:1) and close + 4 x ATR (2:1); a short mirrors it (stop close + 2 x
ATR, targets close - 2 x ATR and close - 4 x ATR). The Executor takes the 4 x ATR target, so a
trade it proposes risks 1 to make 2; the 2 x ATR level is named as the first scale-out. With no
ATR yet there is no stop to place, so the answer is hold. Prices are rounded to 4 places.

A hold carries the current price and null target and stop.

Confidence: of every vote cast (each timeframe's three trend votes, abstentions left out, and
its momentum), the share on the decision's side for a buy or a sell; for a hold, how evenly
they balance (1 - |bullish - bearish| / votes). Two places; none without a vote.

Usage: prompt tokens are the words of every message sent, completion tokens the words of the
reply, so token counts are deterministic and grow with the conversation like a real model's.

``garbled_replies=N`` makes the Executor's first N answers unusable (prose, a missing field,
an unknown decision type, in turn), to exercise the team's retry path.
"""

import json
import re
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from autogen_core import CancellationToken, Component
from autogen_core.models import (
    ChatCompletionClient,
    CreateResult,
    LLMMessage,
    ModelFamily,
    ModelInfo,
    RequestUsage,
    SystemMessage,
)
from autogen_core.tools import Tool, ToolSchema
from pydantic import BaseModel

MARKET_DATA_BEGIN = "BEGIN MARKET DATA"
MARKET_DATA_END = "END MARKET DATA"
_ROLE = re.compile(r"<<role:([a-z_]+)>>")
_MARKET = re.compile(
    re.escape(MARKET_DATA_BEGIN) + r"\s*(.*?)\s*" + re.escape(MARKET_DATA_END), re.S
)
CONTEXT_WINDOW = 128_000
STOP_ATR = 2
TARGET_ATRS = (2, 4)
OVERBOUGHT = 70
OVERSOLD = 30
WORDS = {1: "bullish", -1: "bearish", 0: "neutral"}


def role_marker(role):
    """The tag an agent's system message carries so this client knows who is asking."""
    return f"<<role:{role}>>"


def _sign(value):
    return (value > 0) - (value < 0)


def _price(value):
    return round(value, 4)


def _num(value):
    return "n/a" if value is None else f"{value:g}"


@dataclass
class TimeframeView:
    """One timeframe's votes, with the numbers they came from (for the analyst's message)."""

    bar: str
    close: float
    trend_votes: list  # (label, vote or None)
    trend: int
    momentum: int
    macd_hist: float | None
    rsi: float | None
    rsi_zone: str
    verdict: int


def _rsi_zone(rsi):
    if rsi is None:
        return "unknown"
    if rsi > OVERBOUGHT:
        return "overbought"
    if rsi < OVERSOLD:
        return "oversold"
    return "neutral"


def timeframe_view(snapshot):
    """Apply rules 1 to 4 to one timeframe's latest values."""
    close = snapshot["close"]
    votes = []
    for name in ("sma_50", "sma_200"):
        level = snapshot.get(name)
        label = name.upper().replace("_", "")
        if level is None:
            votes.append((f"{label} n/a", None))
        else:
            side = "above" if close > level else "below" if close < level else "at"
            votes.append((f"close {close:g} {side} {label} {level:g}", _sign(close - level)))
    direction = snapshot.get("supertrend_direction")
    if direction is None:
        votes.append(("supertrend n/a", None))
    else:
        votes.append((f"supertrend {direction:+g}", _sign(direction)))
    trend = _sign(sum(vote for _, vote in votes if vote is not None))
    hist = snapshot.get("macd_hist")
    momentum = 0 if hist is None else _sign(hist)
    rsi = snapshot.get("rsi_14")
    zone = _rsi_zone(rsi)
    verdict = 0
    if trend == momentum == 1 and zone != "overbought":
        verdict = 1
    elif trend == momentum == -1 and zone != "oversold":
        verdict = -1
    return TimeframeView(snapshot["bar"], close, votes, trend, momentum, hist, rsi, zone, verdict)


@dataclass
class Assessment:
    """What the rules conclude for the whole market block."""

    symbol: str
    views: list
    consensus: int  # +1 all bullish, -1 all bearish, 0 otherwise
    close: float  # shortest timeframe's last close
    atr: float | None  # shortest timeframe's ATR 14
    shortest: str

    def levels(self):
        """(stop, first target, second target) for the consensus side, or None."""
        if not self.consensus or not self.atr:
            return None
        step = self.consensus * self.atr
        return (
            _price(self.close - STOP_ATR * step),
            _price(self.close + TARGET_ATRS[0] * step),
            _price(self.close + TARGET_ATRS[1] * step),
        )


def assess(market):
    views = [timeframe_view(snapshot) for snapshot in market["timeframes"]]
    verdicts = {view.verdict for view in views}
    consensus = verdicts.pop() if len(verdicts) == 1 else 0
    shortest = market["timeframes"][0]
    return Assessment(
        symbol=market.get("symbol", ""),
        views=views,
        consensus=consensus,
        close=shortest["close"],
        atr=shortest.get("atr_14"),
        shortest=shortest["bar"],
    )


def _analyst_reply(assessment):
    lines = [f"Technical view of {assessment.symbol}, one look per timeframe:"]
    for view in assessment.views:
        votes = ", ".join(
            f"{label} ({'abstains' if vote is None else f'{vote:+d}'})"
            for label, vote in view.trend_votes
        )
        lines.append(
            f"- {view.bar}: trend {WORDS[view.trend]} [{votes}]; momentum "
            f"{WORDS[view.momentum]} [MACD histogram {_num(view.macd_hist)}]; RSI 14 "
            f"{_num(view.rsi)} {view.rsi_zone}. Timeframe {WORDS[view.verdict]}."
        )
    if assessment.consensus:
        lines.append(f"Agreement: every timeframe is {WORDS[assessment.consensus]}.")
    else:
        lines.append("Agreement: none, the timeframes do not all point the same way.")
    return "\n".join(lines)


def _risk_reply(assessment):
    if not assessment.consensus:
        return (
            f"Risk: no agreement between timeframes, so no position and no stop to set. "
            f"Last close on {assessment.shortest} is {assessment.close:g}."
        )
    if not assessment.atr:
        return f"Risk: ATR 14 on {assessment.shortest} is not available yet; no stop can be set."
    stop, first, second = assessment.levels()
    side = "long" if assessment.consensus > 0 else "short"
    return (
        f"Risk for a {side} from the {assessment.shortest} close {assessment.close:g} with ATR 14 "
        f"{assessment.atr:g}: stop {stop:g} ({STOP_ATR} x ATR), targets {first:g} "
        f"({TARGET_ATRS[0]} x ATR, 1:1) and {second:g} ({TARGET_ATRS[1]} x ATR, 2:1)."
    )


def _confidence(assessment, kind):
    votes = [
        vote for view in assessment.views
        for vote in [*(v for _, v in view.trend_votes if v is not None), view.momentum]
    ]  # fmt: skip
    if not votes:
        return None
    if kind == "hold":
        return round(1 - abs(sum(votes)) / len(votes), 2)
    side = 1 if kind == "buy" else -1
    return round(sum(1 for vote in votes if vote == side) / len(votes), 2)


def executor_decision(assessment):
    """The decision the Executor's rules give, as the JSON-ready dict it replies with."""
    current = _price(assessment.close)
    levels = assessment.levels()
    if levels is None:
        if assessment.consensus:
            reason = f"ATR 14 on {assessment.shortest} not available, no stop can be placed"
        else:
            verdicts = ", ".join(f"{view.bar} {WORDS[view.verdict]}" for view in assessment.views)
            reason = f"the timeframes do not agree ({verdicts})"
        return {
            "type": "hold",
            "current_price": current,
            "target_price": None,
            "stop_loss": None,
            "confidence": _confidence(assessment, "hold"),
            "analysis": f"Hold {assessment.symbol}: {reason}.",
        }
    stop, first, second = levels
    kind = "buy" if assessment.consensus > 0 else "sell"
    return {
        "type": kind,
        "current_price": current,
        "target_price": second,
        "stop_loss": stop,
        "confidence": _confidence(assessment, kind),
        "analysis": (
            f"{kind.capitalize()} {assessment.symbol}: every timeframe is "
            f"{WORDS[assessment.consensus]} ({', '.join(v.bar for v in assessment.views)}). "
            f"Stop {stop:g} is {STOP_ATR} x ATR 14 ({assessment.atr:g}) of {assessment.shortest} "
            f"from {current:g}; target {second:g} at {TARGET_ATRS[1]} x ATR (reward-to-risk 2), "
            f"first scale-out at {first:g}."
        ),
    }


def _garbled(decision, index):
    """An unusable Executor answer; the failure changes with ``index`` so each is distinct."""
    kind = index % 3
    if kind == 0:
        return f"I would lean {decision['type']} around {decision['current_price']:g}, roughly."
    if kind == 1:
        incomplete = dict(decision)
        del incomplete["stop_loss"]
        return json.dumps(incomplete)
    return json.dumps({**decision, "type": f"strong_{decision['type']}"})


def _words(text):
    return len(text.split())


def _prompt_words(messages):
    total = 0
    for message in messages:
        content = message.content
        parts = content if isinstance(content, list) else [content]
        total += sum(_words(part) for part in parts if isinstance(part, str))
    return total


def _market(messages):
    """The latest market data block in the conversation, or None."""
    for message in reversed(messages):
        if isinstance(message.content, str):
            found = _MARKET.search(message.content)
            if found:
                return json.loads(found.group(1))
    return None


def _role(messages):
    for message in reversed(messages):
        if isinstance(message, SystemMessage):
            found = _ROLE.search(message.content)
            if found:
                return found.group(1)
    return None


class OfflineClientConfig(BaseModel):
    garbled_replies: int = 0


class OfflineChatCompletionClient(ChatCompletionClient, Component[OfflineClientConfig]):
    """The rules above behind autogen's model-client interface; no network, no randomness."""

    component_type = "model"
    component_config_schema = OfflineClientConfig
    component_provider_override = "workflows.agents.offline.OfflineChatCompletionClient"

    def __init__(self, garbled_replies=0):
        self.garbled_replies = garbled_replies
        self.executor_answers = 0
        self._last_usage = RequestUsage(prompt_tokens=0, completion_tokens=0)
        self._total_usage = RequestUsage(prompt_tokens=0, completion_tokens=0)

    def _answer(self, messages):
        """The text the rules give for this conversation (no usage bookkeeping)."""
        role = _role(messages)
        market = _market(messages)
        if market is None:
            return "I have no market data block to reason from."
        assessment = assess(market)
        if role == "technical_analyst":
            return _analyst_reply(assessment)
        if role == "risk_manager":
            return _risk_reply(assessment)
        if role == "executor":
            decision = executor_decision(assessment)
            self.executor_answers += 1
            if self.executor_answers <= self.garbled_replies:
                return _garbled(decision, self.executor_answers - 1)
            return json.dumps(decision)
        return "Nothing to add from my side offline: I have no data feed for my speciality."

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = (),
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] | None = None,
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        content = self._answer(messages)
        usage = RequestUsage(
            prompt_tokens=_prompt_words(messages), completion_tokens=_words(content)
        )
        self._last_usage = usage
        self._total_usage = RequestUsage(
            prompt_tokens=self._total_usage.prompt_tokens + usage.prompt_tokens,
            completion_tokens=self._total_usage.completion_tokens + usage.completion_tokens,
        )
        return CreateResult(finish_reason="stop", content=content, usage=usage, cached=False)

    async def create_stream(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = (),
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] | None = None,
        cancellation_token: CancellationToken | None = None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        result = await self.create(messages)
        for word in re.findall(r"\S+\s*", result.content):
            yield word
        yield result

    async def close(self):
        return None

    def actual_usage(self):
        return self._last_usage

    def total_usage(self):
        return self._total_usage

    def count_tokens(self, messages, *, tools=()):
        return _prompt_words(messages)

    def remaining_tokens(self, messages, *, tools=()):
        return max(0, CONTEXT_WINDOW - self.count_tokens(messages))

    @property
    def capabilities(self):
        return self.model_info

    @property
    def model_info(self):
        # structured_output is False: replies follow our Executor's JSON contract, not any
        # schema a caller passes as json_output.
        return ModelInfo(
            vision=False,
            function_calling=False,
            json_output=True,
            structured_output=False,
            family=ModelFamily.UNKNOWN,
        )

    def _to_config(self):
        return OfflineClientConfig(garbled_replies=self.garbled_replies)

    @classmethod
    def _from_config(cls, config):
        return cls(garbled_replies=config.garbled_replies)
