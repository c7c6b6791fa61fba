"""Whether a workflow's steps, and a strategy's parameters for it, can run.

The rules come from the step classes themselves (``steps.Step``): what each needs before it
(``requires``), which a workflow needs at least one of (``essential``), which decide
(``decides``). Nothing here names a step type.
"""

from dataclasses import dataclass
from decimal import Decimal

from tradingsite.broker.vocabulary import bar_error, history_error, period_error

from .params import PLACEHOLDER, fill_placeholders, required_params
from .steps import REGISTRY, number_error


@dataclass(frozen=True)
class StepError:
    """One problem: the step (1-based, as a person counts; None for the workflow as a whole),
    the field and the message. ``step_type`` names the step in the text; ``param`` is the
    strategy parameter the field was filled from (``{{bar_2}}``), when it was one, so that a
    form shows the problem next to that parameter."""

    step: int | None
    field: str
    message: str
    step_type: str = ""
    param: str | None = None

    def __str__(self):
        where = f"step {self.step} ({self.step_type})" if self.step else "workflow"
        return f"{where}: {self.field}: {self.message}"


def _either(types):
    """``"a, b or c"``."""
    return f"{', '.join(types[:-1])} or {types[-1]}" if len(types) > 1 else types[0]


def workflow_errors(steps):
    """Every problem of ``steps``; an empty list of steps is a draft and has none."""
    if not isinstance(steps, list):
        return [StepError(None, "steps", "must be a list of steps")]
    errors = []
    types = []
    for number, step in enumerate(steps, start=1):
        if not isinstance(step, dict) or not isinstance(step.get("type"), str):
            errors.append(
                StepError(number, "type", 'each step is {"type": ..., "config": {...}}', "?")
            )
            types.append(None)
            continue
        step_type = step["type"]
        types.append(step_type)
        for key in step.keys() - {"type", "config"}:
            errors.append(
                StepError(number, key, "unknown key (a step has type and config)", step_type)
            )
        handler = REGISTRY.get(step_type)
        if handler is None:
            known = ", ".join(sorted(REGISTRY))
            errors.append(
                StepError(number, "type", f"unknown step type (known: {known})", step_type)
            )
            continue
        for field, reason in sorted(handler.check(step.get("config", {})).items()):
            errors.append(StepError(number, field, reason, step_type))
    if not steps:
        return errors
    for step_type, handler in REGISTRY.items():
        if handler.essential and step_type not in types:
            errors.append(StepError(None, "steps", f"needs at least one {step_type} step"))
    deciding = [step_type for step_type, handler in REGISTRY.items() if handler.decides]
    if not set(deciding) & set(types):
        errors.append(StepError(None, "steps", f"needs an {_either(deciding)} step"))
    for number, step_type in enumerate(types, start=1):
        handler = REGISTRY.get(step_type)
        for required in handler.requires if handler else ():
            if required not in types[: number - 1]:
                errors.append(
                    StepError(number, "type", f"needs a {required} step before it", step_type)
                )
    return errors


def _between(minimum, maximum, *, integer=False):
    return lambda value: number_error(value, minimum=minimum, maximum=maximum, integer=integer)


# Parameters the product itself understands, checked whenever they are given: IB's words for
# the timeframes, and the risk gate's settings (strategies.risk), whose nonsense would
# otherwise surface only when a run reaches the gate, or size an order from it.
_PARAM_CHECKS = {
    "period": period_error,
    "bar": bar_error,
    "min_r_coefficient": _between(0, 1000),
    "min_profit_margin": _between(0, 10),
    "risk_per_trade": _between(Decimal("0.0001"), 1),
    "account_size": _between(1, 10**12),
    "max_open_positions": _between(0, 10_000, integer=True),
    "max_orders_per_day": _between(0, 10_000, integer=True),
    "max_entries_per_symbol": _between(1, 1_000, integer=True),
    "allow_short": lambda value: None if isinstance(value, bool) else "must be true or false",
    "max_daily_loss_pct": _between(Decimal("0.01"), 100),
}


def param_value_errors(params):
    """``{name: reason}`` for the values of ``params`` the product understands (the
    timeframes, the risk settings) that would not run, whatever the steps."""
    problems = {}
    for name, value in params.items():
        kind = name.rsplit("_", 1)[0] if name[-1:].isdigit() else name
        check = _PARAM_CHECKS.get(kind)
        reason = check(value) if check else None
        if reason:
            problems[name] = reason
    for name, period in params.items():  # period_1 with bar_1: a pair IB serves
        if name.startswith("period") and name not in problems:
            bar_name = "bar" + name[len("period") :]
            if bar_name in params and bar_name not in problems:
                reason = history_error(period, params[bar_name])
                if reason:
                    problems[name] = reason
    return problems


def params_step_errors(steps, params):
    """Every problem of ``params`` for ``steps``, as StepErrors: a missing placeholder or a
    value that would not run is the parameter's (``step`` None, ``param`` its name); then, once
    those are right, each problem of the steps filled from them, with the parameter the field
    was filled from."""
    if not isinstance(params, dict):
        return [StepError(None, "param", "must be an object")]
    errors = [
        StepError(None, name, "is required by the workflow", param=name)
        for name in sorted(required_params(steps) - params.keys())
    ]
    errors += [
        StepError(None, name, reason, param=name)
        for name, reason in param_value_errors(params).items()
    ]
    if errors:
        return errors
    return [
        StepError(error.step, error.field, error.message, error.step_type,
                  _filled_from(steps, error))
        for error in workflow_errors(fill_placeholders(steps, params))
    ]  # fmt: skip


def _filled_from(steps, error):
    """The parameter whose ``{{placeholder}}`` is the whole value of the field in error."""
    if not error.step or not isinstance(steps[error.step - 1], dict):
        return None
    value = (steps[error.step - 1].get("config") or {}).get(error.field)
    whole = PLACEHOLDER.fullmatch(value.strip()) if isinstance(value, str) else None
    return whole.group(1) if whole else None


def params_errors(steps, params):
    """Problems of ``params`` for ``steps`` as ``{name: reason}``, a step's problem named
    ``"step N field"``: what the API returns under ``errors.param``."""
    return {error_name(error): error.message for error in params_step_errors(steps, params)}


def error_name(error):
    """``"step 6 min_r_coefficient"`` for a step's field, the field alone otherwise."""
    return f"step {error.step} {error.field}" if error.step else error.field
