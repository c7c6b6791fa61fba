"""Step types: the check of each config, and what each does in a run.

Each step is a small class registered by name. ``check(config)`` returns
``{field: reason}`` for a config that is wrong; a value that is a ``{{placeholder}}`` is
checked after it is filled from the parameters (``params_errors``), not here.
``run(run, symbol, config)`` does the step for one code (see ``runner.SymbolRun``).

The engine stands on top of the domain (README, "Layout"): steps call the services of
marketdata, strategies and orders directly. Only the agents are imported where a step runs
them, with the reason said there.
"""

import time
from decimal import Decimal, InvalidOperation

from celery.exceptions import SoftTimeLimitExceeded

from strategies.risk import CLOSE
from tradingsite.broker import BrokerError
from tradingsite.broker.vocabulary import bar_error, history_error, period_error
from tradingsite.exceptions import ApplicationError
from tradingsite.money import decision_r_text, percent_text, price_text

from .locks import LOCK_SECONDS
from .params import is_placeholder

INDICATORS = frozenset(
    ["sma_20", "sma_50", "sma_200", "ema_12", "ema_26", "macd", "rsi_14", "atr_14", "bollinger",
     "supertrend"]
)  # fmt: skip

REGISTRY = {}

# A wait is one step: the run lock (extended before each step) must outlast it, with room left.
WAIT_MAX_SECONDS = LOCK_SECONDS // 2


def register(cls):
    REGISTRY[cls.type] = cls()
    return cls


def number_error(value, *, minimum=None, maximum=None, integer=False):
    """The reason ``value`` is not an acceptable number, or None."""
    if isinstance(value, bool):
        return "must be a number"
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return f"{value!r} is not a number"
    if not number.is_finite():
        return "must be a finite number"
    if integer and number != number.to_integral_value():
        return f"{value!r} is not a whole number"
    if minimum is not None and number < minimum:
        return f"must be at least {minimum}"
    if maximum is not None and number > maximum:
        return f"must be at most {maximum}"
    return None


class Step:
    """A step type: its config's fields, where it may stand in a workflow, and what it does.

    Validation and the runner read these declarations and name no step type themselves.
    """

    type = ""
    #: field -> (required, checker(value) -> reason or None)
    fields = {}
    #: the step types that must come before this one in a workflow
    requires = ()
    #: a workflow needs at least one step of this type (the data everything else works on)
    essential = False
    #: the step decides (a model or the rules): a workflow needs at least one such step
    decides = False
    #: deciding and ordering steps are skipped for a code whose decision failed
    needs_decision_path = False
    #: False for a step that paces the codes (a wait): it does not run after the last code
    runs_after_last_code = True

    def log(self, run, symbol, message, *, level="info"):
        """A line of the run's log from this step, about ``symbol`` (a SymbolRun; None for
        the run as a whole)."""
        run.log(message, level=level, symbol=symbol.name if symbol else None, step=self.type)

    def run(self, run, symbol, config):
        raise NotImplementedError(f"step {self.type} has no run")

    def check(self, config):
        if not isinstance(config, dict):
            return {"config": "must be an object"}
        problems = {}
        for name in config.keys() - self.fields.keys():
            allowed = ", ".join(sorted(self.fields)) or "none"
            problems[name] = f"unknown field (allowed: {allowed})"
        for name, (required, checker) in self.fields.items():
            if name not in config:
                if required:
                    problems[name] = "is required"
                continue
            value = config[name]
            if is_placeholder(value):
                continue
            reason = checker(value)
            if reason:
                problems[name] = reason
        return problems


def _indicator_list(value):
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return "must be a list of indicator names"
    unknown = sorted(set(value) - INDICATORS)
    if unknown:
        return f"unknown indicators {', '.join(unknown)} (known: {', '.join(sorted(INDICATORS))})"
    return None


def _text(value):
    return None if isinstance(value, str) and value.strip() else "must be non-empty text"


def _one_of(*choices):
    def check(value):
        return None if value in choices else f"{value!r} is not one of {', '.join(choices)}"

    return check


def _agents(value):
    if not isinstance(value, list) or not value:
        return "must be a non-empty list of agent names"
    if not all(isinstance(v, str) and v.isidentifier() for v in value):
        return "agent names must be identifiers such as TechnicalAnalyst"
    if len(set(value)) != len(value):
        return "agent names must be distinct"
    return None


@register
class FetchData(Step):
    type = "fetch_data"
    essential = True
    fields = {
        "period": (True, period_error),
        "bar": (True, bar_error),
        "indicators": (False, _indicator_list),
    }

    def check(self, config):
        problems = super().check(config)
        if isinstance(config, dict) and not problems.keys() & {"period", "bar", "config"}:
            period, bar = config.get("period"), config.get("bar")
            if not (is_placeholder(period) or is_placeholder(bar)):
                reason = history_error(period, bar)
                if reason:
                    problems["period"] = reason
        return problems

    def run(self, run, symbol, config):
        def waiting(seconds):
            run.log(
                f"{symbol.code.symbol} {config['period']} / {config['bar']}: waiting "
                f"{seconds:.1f} s for IB's historical-data pacing (shared by every process "
                "that talks to this gateway)",
                symbol=symbol.code.symbol,
                step=self.type,
            )

        row = run.market_data(
            code=symbol.code, period=config["period"], bar=config["bar"], on_wait=waiting
        )
        symbol.timeframes[config["bar"]] = row.data
        symbol.sources[config["bar"]] = (config["period"], getattr(row, "pk", None))
        source = "cache" if row.served_from_cache else getattr(row, "source", "IB")
        if getattr(row, "fetched_meanwhile", False):
            source = "IB, asked by another run at the same time"
        closes = row.data["bars"]["close"]
        self.log(
            run,
            symbol,
            f"{symbol.name} {config['period']} / {config['bar']}: {len(closes)} bars from "
            f"{source}, last close {price_text(Decimal(str(closes[-1])))}",
        )


@register
class GenerateChart(Step):
    type = "generate_chart"
    fields = {"indicators": (False, _indicator_list)}

    def run(self, run, symbol, config):
        """Records each chart, drawn as a PNG when first viewed (workflows/charts.py): the
        agents read the bars and indicators, never the image, and most runs' charts are
        never opened."""
        for bar, document in symbol.timeframes.items():
            chart = run.chart_record(
                symbol=symbol, bar=bar, document=document, indicators=config.get("indicators")
            )
            if chart is None:  # a backtest keeps no chart at each bar
                continue
            run.charts.append(chart)
            self.log(run, symbol, f"chart {chart['path']}")


@register
class AiAnalyze(Step):
    type = "ai_analyze"
    decides = True
    fields = {
        "prompt_template": (True, _text),
        "model": (False, _text),
        "temperature": (False, lambda v: number_error(v, minimum=0, maximum=2)),
        "max_tokens": (False, lambda v: number_error(v, minimum=1, maximum=100000, integer=True)),
    }
    needs_decision_path = True

    def run(self, run, symbol, config):
        # Imported where a step runs the agents: AutoGen costs every process that imports the
        # engine (the web's too, which never runs a step) about a second at start-up.
        from ..agents.analyze import analyze

        model = config.get("model") or run.params.get("llm_model") or None
        outcome = _ask_model(self, run, symbol, model, lambda: analyze(
            symbol.name, symbol.timeframes, prompt_template=config["prompt_template"],
            model=model, temperature=config.get("temperature"),
            max_tokens=config.get("max_tokens"),
        ))  # fmt: skip
        if outcome is None:
            return
        run.conversation_record(outcome.messages)
        _model_used(symbol, outcome)
        symbol.analyses.append(outcome.text)
        self.log(run, symbol, f"analysis by the model: {outcome.text[:200]}")
        if outcome.decision is None:
            symbol.unparsed.append(outcome.parse_error)
            symbol.unparsed_reply = outcome.text
            self.log(run, symbol, f"parsing error: {outcome.parse_error}", level="error")
        elif symbol.proposal is None:
            symbol.proposal = outcome.decision


@register
class AutogenTeam(Step):
    type = "autogen_team"
    decides = True
    fields = {
        "agents": (False, _agents),
        "max_rounds": (False, lambda v: number_error(v, minimum=1, maximum=50, integer=True)),
        "instructions": (False, _text),
    }
    needs_decision_path = True

    def run(self, run, symbol, config):
        from ..agents.team import decide  # where it runs: AutoGen is slow to import (above)

        model = run.params.get("llm_model") or None
        outcome = _ask_model(self, run, symbol, model, lambda: decide(
            symbol.name, symbol.timeframes, agents=config.get("agents"),
            max_rounds=int(config.get("max_rounds", 10)),
            instructions=config.get("instructions", ""), model=model,
        ))  # fmt: skip
        if outcome is None:
            return
        run.conversation_record(outcome.messages)
        _model_used(symbol, outcome)
        for error in outcome.parse_errors:
            self.log(run, symbol, f"parsing error: {error}", level="error")
        if outcome.decision is None:
            symbol.halted = f"no decision could be parsed after {outcome.attempts} attempts"
            self.log(
                run, symbol, f"{symbol.name}: {symbol.halted}; no order follows", level="error"
            )
            symbol.unparsed_reply = outcome.last_reply
            _record_unusable(self, run, symbol, status="parsing_error",
                             error="; ".join(outcome.parse_errors))  # fmt: skip
            return
        symbol.proposal = outcome.decision
        symbol.analyses.append(outcome.decision.get("analysis", ""))
        self.log(run, symbol, f"team proposes {outcome.decision['type']} ({outcome.stop_reason})")


@register
class Consolidate(Step):
    """Joins what the analyses of every timeframe said into the decision's analysis text."""

    type = "consolidate"
    fields = {}

    def run(self, run, symbol, config):
        parts = [text for text in symbol.analyses if text]
        if symbol.proposal is not None and parts:
            symbol.proposal = {**symbol.proposal, "analysis": "\n\n".join(parts)}
        self.log(run, symbol, f"consolidated {len(parts)} analyses")


def _mean(values):
    return sum(values) / len(values)


def _fraction(value):
    return number_error(value, minimum=Decimal("0.001"), maximum=Decimal("0.99"))


@register
class SmaCross(Step):
    """Rules only, no model: a buy when the fast simple moving average of the closes crosses
    above the slow one, a sell when it crosses below (as backtesting.py's ``crossover``: on
    the other side at the bar before, strictly across at this one), else a hold. Its target
    and stop (``target_pct``, ``stop_pct`` from the close) are what the risk gate sizes by."""

    type = "sma_cross"
    fields = {
        "fast": (True, lambda v: number_error(v, minimum=1, maximum=1000, integer=True)),
        "slow": (True, lambda v: number_error(v, minimum=2, maximum=1000, integer=True)),
        "bar": (False, bar_error),
        "target_pct": (False, _fraction),
        "stop_pct": (False, _fraction),
    }
    needs_decision_path = True

    def run(self, run, symbol, config):
        bar = config.get("bar") or next(iter(symbol.timeframes), None)
        if bar not in symbol.timeframes:
            raise_missing(self.type, f"a fetch_data step of {bar or 'some'} bars")
        closes = symbol.timeframes[bar]["bars"]["close"]
        fast, slow = int(config["fast"]), int(config["slow"])
        kind, note = "hold", f"fewer than {max(fast, slow) + 1} bars"
        if len(closes) > max(fast, slow):
            fast_now, fast_before = _mean(closes[-fast:]), _mean(closes[-fast - 1 : -1])
            slow_now, slow_before = _mean(closes[-slow:]), _mean(closes[-slow - 1 : -1])
            if fast_before < slow_before and fast_now > slow_now:
                kind, note = "buy", "crossed above"
            elif slow_before < fast_before and slow_now > fast_now:
                kind, note = "sell", "crossed below"
            else:
                kind, note = "hold", "above" if fast_now > slow_now else "not above"
        close = Decimal(str(closes[-1]))
        target = Decimal(str(config.get("target_pct", "0.10")))
        stop = Decimal(str(config.get("stop_pct", "0.05")))
        direction = -1 if kind == "sell" else 1
        symbol.proposal = {
            "type": kind,
            "current_price": close,
            "target_price": close * (1 + direction * target) if kind != "hold" else None,
            "stop_loss": close * (1 - direction * stop) if kind != "hold" else None,
            "analysis": f"SMA({fast}) {note} SMA({slow}) at {closes[-1]}",
        }


# How far a proposed buy or sell price may be from IB's price when it is decided.
PRICE_TOLERANCE = Decimal("0.02")


def _price_gap(proposal, live):
    """Why a buy or sell ``proposal``'s price is not IB's ``live`` price (a PriceReport), or
    None. The model saw cached bars, up to an hour old: if the market has moved further since,
    its target and stop are stale too."""
    try:
        price = Decimal(str(proposal.get("current_price")))
        gap = abs(price - live.price) / live.price
    except (InvalidOperation, ValueError, TypeError):
        return None  # the decision's own checks name an unreadable price
    if gap <= PRICE_TOLERANCE:
        return None
    return (
        f"the proposed price {price} is {gap:.1%} from IB's price {live.price} now, more than "
        f"{PRICE_TOLERANCE:.0%}"
    )


def _live_price(step, run, symbol):
    """IB's price of the symbol now (a PriceReport), or None with the symbol halted."""
    try:
        return run.price_now(code=symbol.code)
    except (BrokerError, ApplicationError) as exc:
        reason = getattr(exc, "extra", {}).get("price") or str(exc)
        symbol.halted = f"no live price from IB ({reason})"
        step.log(
            run, symbol, f"{symbol.name}: {symbol.halted}; no decision, no order", level="error"
        )
        return None


@register
class Decide(Step):
    """Stores the proposed decision; with no model step before it, the offline rules decide.

    A buy or sell is decided at IB's live price (a snapshot now), which becomes the order's
    limit: the bars the model saw may be an hour old (seed 000's cache)."""

    type = "decide"
    decides = True
    fields = {}
    needs_decision_path = True

    def run(self, run, symbol, config):
        proposal = symbol.proposal
        if proposal is None and symbol.unparsed:
            # A model was asked and its answer could not be read: no decision, so no order.
            symbol.halted = "the model's answer could not be parsed into a decision"
            self.log(
                run, symbol, f"{symbol.name}: {symbol.halted}; no order follows", level="error"
            )
            _record_unusable(self, run, symbol, status="parsing_error",
                             error="; ".join(symbol.unparsed))  # fmt: skip
            return
        if proposal is None:
            # Where it runs, and only then: AutoGen is slow to import (a rules step proposes).
            from ..agents.analyze import rules_decision

            proposal = rules_decision(symbol.name, symbol.timeframes)
            self.log(run, symbol, "no model proposal: the indicator rules decide")
        price, live = {"current_price": proposal["current_price"]}, None
        if proposal["type"] in ("buy", "sell"):
            live = _live_price(self, run, symbol)
            if live is None:
                return
            gap = _price_gap(proposal, live)
            if gap:
                # The decision's price is the order's limit and the basis of its size: a
                # model's price that is not the market's would send an order far from it.
                symbol.halted = gap
                self.log(run, symbol, f"{symbol.name}: {gap}; no decision, no order", level="error")
                return
            price = {"current_price": live.price, "price_at": live.time,
                     "proposed_price": proposal["current_price"]}  # fmt: skip
        symbol.decision = run.decision_record(
            code=symbol.code,
            strategy=run.strategy,
            type=proposal["type"],
            target_price=proposal.get("target_price"),
            stop_loss=proposal.get("stop_loss"),
            analysis_text=proposal.get("analysis", ""),
            workflow_execution=run.execution,
            confidence=proposal.get("confidence"),
            llm_model=symbol.llm_model,
            execution_time_ms=symbol.model_time_ms,
            **price,
        )
        run.counts["decisions_made"] += 1
        d = symbol.decision
        at_ib = "" if live is None else (
            f" (IB's {'delayed ' if live.delayed else ''}price at "
            f"{live.time:%Y-%m-%d %H:%M:%S} UTC; proposed {price_text(d.proposed_price)})"
        )  # fmt: skip
        target = "no target" if d.target_price is None else price_text(d.target_price)
        self.log(
            run,
            symbol,
            f"decision {d.type} at {price_text(d.current_price)}{at_ib}, target {target}, "
            f"stop {price_text(d.stop_loss)}, {decision_r_text(d)}, "
            f"margin {percent_text(d.profit_margin)}",
        )


@register
class ValidateRisk(Step):
    type = "validate_risk"
    fields = {
        "min_r_coefficient": (False, lambda v: number_error(v, minimum=0)),
        "min_profit_margin": (False, lambda v: number_error(v, minimum=0)),
    }
    needs_decision_path = True

    def run(self, run, symbol, config):
        if symbol.decision is None:
            raise_missing(self.type, "a decide step")
        # The ATR places a stop only for a decision without one.
        decision = symbol.decision
        needs_atr = decision.type in ("buy", "sell") and decision.stop_loss is None
        atr = _last_atr(symbol) if needs_atr else None
        symbol.risk = run.risk_check(
            decision=symbol.decision, strategy=run.strategy, params=run.params, overrides=config,
            atr=atr, account=run.account,
        )  # fmt: skip
        for rule, passed, detail in symbol.risk.checks:
            self.log(run, symbol, f"risk {rule}: {'pass' if passed else 'REFUSED'} - {detail}")
        verdict = (
            f"approved, quantity {symbol.risk.quantity}" if symbol.risk.approved else "refused"
        )
        self.log(run, symbol, f"risk gate {verdict}")


@register
class PlaceOrder(Step):
    type = "place_order"
    requires = ("validate_risk",)
    fields = {
        "order_type": (False, _one_of("LMT", "MKT")),
        "tif": (False, _one_of("GTC", "DAY")),
    }
    needs_decision_path = True

    def run(self, run, symbol, config):
        risk = symbol.risk
        if risk is None or not risk.approved:
            self.log(run, symbol, "no order: the risk gate did not approve")
            return
        order_type = config.get("order_type", "LMT")
        tif = config.get("tif", "DAY")
        price = risk.entry if order_type == "LMT" else None
        what = f"{risk.side} {risk.quantity} {symbol.name} {order_type}"
        if risk.intent == CLOSE:
            what += f" {tif} to close the position"
        else:
            what += (
                f" at {risk.entry} {tif} with take profit {risk.target_price} and stop "
                f"{risk.stop_loss}"
            )
        if run.dry_run:
            self.log(run, symbol, f"dry run: skipped {what}")
            return
        if risk.intent == CLOSE:
            exits = run.position_exit(code=symbol.code, order_type=order_type, price=price,
                                      tif=tif, decision=symbol.decision)  # fmt: skip
            symbol.order = exits[0]
            placed = ", ".join(f"{o.pk} (IB order {o.ibkr_order_id})" for o in exits)
            message = (f"exit {what} placed: order {placed}; the position's bracket children "
                       "are cancelled by IB as it fills")  # fmt: skip
        else:
            symbol.order = run.bracket_place(
                decision=symbol.decision, side=risk.side, quantity=risk.quantity,
                entry_price=risk.entry, target_price=risk.target_price,
                stop_loss=risk.stop_loss, entry_type=order_type, tif=tif,
            )  # fmt: skip
            children = ", ".join(f"{c.role} {c.pk}" for c in symbol.order.children.all())
            message = (f"bracket {what} placed: entry {symbol.order.pk} (IB order "
                       f"{symbol.order.ibkr_order_id}), {children}")  # fmt: skip
        run.counts["orders_placed"] += 1
        self.log(run, symbol, message)


def _wait_seconds(value):
    reason = number_error(value, minimum=0)
    if reason is None and Decimal(str(value)) > WAIT_MAX_SECONDS:
        reason = (
            f"must be at most {WAIT_MAX_SECONDS} (a run holds its strategy's lock for "
            f"{LOCK_SECONDS} s from one step to the next)"
        )
    return reason


@register
class Wait(Step):
    type = "wait"
    runs_after_last_code = False
    fields = {"seconds": (True, _wait_seconds)}

    def run(self, run, symbol, config):
        seconds = float(config["seconds"])
        if seconds:
            self.log(run, None, f"waiting {seconds:g}s before the next code")
            run.sleep(seconds)


def raise_missing(step_type, what):
    raise ApplicationError(f"{step_type} needs {what} before it.", extra={"steps": step_type})


def _last_atr(symbol):
    """ATR(14) at the last bar of the first timeframe: the fallback stop's yardstick."""
    for document in symbol.timeframes.values():
        values = [v for v in document.get("indicators", {}).get("atr_14", []) if v is not None]
        if values:
            return values[-1]
    return None


def _model_used(symbol, outcome):
    """Keep which model proposed, and add its time to the code's model time."""
    symbol.llm_model = outcome.llm_model
    if outcome.execution_time_ms is not None:
        symbol.model_time_ms = (symbol.model_time_ms or 0) + outcome.execution_time_ms


def _ask_model(step, run, symbol, model, ask):
    """``ask()``'s outcome; or None when the model could not be asked (its endpoint down, a
    refused key, a model it does not serve): that is a decision that failed, kept with the
    reason, and the code goes no further."""
    from ..agents.llm import model_name  # where it runs: AutoGen is slow to import (above)

    began = time.perf_counter()
    try:
        return ask()
    except SoftTimeLimitExceeded:
        raise  # the whole run stops, not this code
    except Exception as exc:
        if not symbol.timeframes:
            raise  # nothing to decide on: the code fails as before
        error = _model_error(exc)
        symbol.llm_model = model_name(model)
        symbol.model_time_ms = round((time.perf_counter() - began) * 1000)
        symbol.halted = f"the model could not be asked ({error})"
        step.log(run, symbol, f"{symbol.name}: {symbol.halted}; no order follows", level="error")
        _record_unusable(step, run, symbol, status="failed", error=error)
        return None


def _model_error(exc):
    """``Type: message`` of a model call's error. Trap: autogen's group chat re-raises an
    agent's error as a RuntimeError whose text is ``Type: message`` and then the whole
    traceback; the first line is the reason."""
    text = str(exc).split("\nTraceback", 1)[0].strip()
    if isinstance(exc, RuntimeError) and "Traceback" in str(exc):
        return text
    return f"{type(exc).__name__}: {text}"


def _record_unusable(step, run, symbol, *, status, error):
    """A decision the model did not make, kept for the audit: a hold at the last close of the
    shortest timeframe, with its status, the reason and the model's last answer."""
    from ..agents.team import market_snapshots  # where it runs: AutoGen is slow to import

    symbol.decision = run.decision_record(
        code=symbol.code, strategy=run.strategy, type="hold",
        current_price=Decimal(str(round(market_snapshots(symbol.timeframes)[0]["close"], 4))),
        analysis_text=symbol.unparsed_reply or "", workflow_execution=run.execution,
        status=status, error_message=error, llm_model=symbol.llm_model,
        execution_time_ms=symbol.model_time_ms,
    )  # fmt: skip
    step.log(run, symbol, f"decision {symbol.decision.pk} recorded as {status}: {error}",
             level="error")  # fmt: skip
