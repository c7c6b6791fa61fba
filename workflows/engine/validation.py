"""Whether a workflow's steps, and a strategy's parameters for it, can run."""

from dataclasses import dataclass
from decimal import Decimal

from tradingsite.broker.vocabulary import bar_error, period_error

from .params import fill_placeholders, required_params
from .steps import DECIDING_STEPS, REGISTRY, number_error


@dataclass(frozen=True)
class StepError:
    """One problem, naming the step (1-based, as a person counts) and the field."""

    step: int | None
    step_type: str
    field: str
    reason: str

    def __str__(self):
        where = f"step {self.step} ({self.step_type})" if self.step else "workflow"
        return f"{where}: {self.field}: {self.reason}"


def workflow_errors(steps):
    """Every problem of ``steps``; an empty list of steps is a draft and has none."""
    if not isinstance(steps, list):
        return [StepError(None, "", "steps", "must be a list of steps")]
    errors = []
    types = []
    for number, step in enumerate(steps, start=1):
        if not isinstance(step, dict) or not isinstance(step.get("type"), str):
            errors.append(
                StepError(number, "?", "type", 'each step is {"type": ..., "config": {...}}')
            )
            types.append(None)
            continue
        step_type = step["type"]
        types.append(step_type)
        for key in step.keys() - {"type", "config"}:
            errors.append(
                StepError(number, step_type, key, "unknown key (a step has type and config)")
            )
        handler = REGISTRY.get(step_type)
        if handler is None:
            known = ", ".join(sorted(REGISTRY))
            errors.append(
                StepError(number, step_type, "type", f"unknown step type (known: {known})")
            )
            continue
        for field, reason in sorted(handler.check(step.get("config", {})).items()):
            errors.append(StepError(number, step_type, field, reason))
    if not steps:
        return errors
    if "fetch_data" not in types:
        errors.append(StepError(None, "", "steps", "needs at least one fetch_data step"))
    if not DECIDING_STEPS & set(types):
        errors.append(
            StepError(None, "", "steps", "needs an ai_analyze, autogen_team or decide step")
        )
    for number, step_type in enumerate(types, start=1):
        if step_type == "place_order" and "validate_risk" not in types[: number - 1]:
            errors.append(
                StepError(number, step_type, "type", "needs a validate_risk step before it")
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
    return problems


def params_errors(steps, params):
    """Problems of ``params`` for ``steps``: missing placeholders and values that would not run.

    Returned as ``{param_name: reason}`` so the API and the admin name each parameter.
    """
    problems = {}
    if not isinstance(params, dict):
        return {"param": "must be an object"}
    for name in sorted(required_params(steps) - params.keys()):
        problems[name] = "is required by the workflow"
    problems.update(param_value_errors(params))
    if problems:
        return problems
    filled = fill_placeholders(steps, params)
    for error in workflow_errors(filled):
        problems[f"step {error.step} {error.field}" if error.step else error.field] = error.reason
    return problems
