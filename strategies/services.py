"""Writes for strategies and decisions: the business rules, each in one function."""

import logging
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from orders.models import Order
from tradingsite.decimals import RATIO_PLACES, quantize, to_decimal
from tradingsite.exceptions import ApplicationError
from tradingsite.names import copy_name
from tradingsite.querysets import delete_in_batches
from workflows.engine import params_errors
from workflows.templates import TEMPLATES

from .models import Decision, DecisionStatus, DecisionType, Strategy, StrategyType
from .schedules import schedule_check, strategy_schedule_remove, strategy_schedule_sync

logger = logging.getLogger(__name__)

CONFIDENCE_PLACES = Decimal("0.01")
STRATEGY_EDITABLE = frozenset(
    {"name", "type", "param", "workflow", "active", "schedule_interval_minutes", "schedule_crontab"}
)


def decision_ratios(*, current_price, target_price, stop_loss):
    """Seed 000's formulas, exact in Decimal and rounded half-even to the column's 6 places.

    ``r_coefficient = (target - current) / (stop - current)``: negative for a sound trade,
    whose reward-to-risk is ``-r``. ``profit_margin = |target - current| / current``.
    Either is None when the prices it needs are missing (a hold without target or stop).
    """
    profit_margin = r_coefficient = None
    if target_price is not None:
        profit_margin = quantize(abs(target_price - current_price) / current_price, RATIO_PLACES)
    if target_price is not None and stop_loss is not None:
        r_coefficient = quantize(
            (target_price - current_price) / (stop_loss - current_price), RATIO_PLACES
        )
    return profit_margin, r_coefficient


def _validated_prices(*, current_price, target_price, stop_loss):
    current = to_decimal(current_price, field="current_price")
    target = to_decimal(target_price, field="target_price", required=False)
    stop = to_decimal(stop_loss, field="stop_loss", required=False)
    for field, value in (("current_price", current), ("target_price", target), ("stop_loss", stop)):
        if value is not None and value <= 0:
            raise ApplicationError(
                f"{field} must be greater than zero.", extra={field: f"{value} is not > 0."}
            )
    if stop is not None and stop == current:
        raise ApplicationError(
            "The stop loss equals the current price, so the reward-to-risk is undefined.",
            extra={"stop_loss": f"Must differ from current_price ({current})."},
        )
    return current, target, stop


def decision_record(
    *,
    code,
    strategy,
    type,
    current_price,
    target_price=None,
    stop_loss=None,
    analysis_text="",
    created_at=None,
    workflow_execution=None,
    price_at=None,
    proposed_price=None,
    status=DecisionStatus.SUCCESS,
    error_message=None,
    confidence=None,
    llm_model="",
    execution_time_ms=None,
):
    """Store a decision with its profit margin and r coefficient computed from its prices.

    ``price_at`` is when IB gave ``current_price`` (a live price); ``proposed_price`` the
    model's own price when the decision is made at IB's instead. The audit (seed 002):
    ``status`` with ``error_message``, the model's ``confidence`` (0 to 1), which model
    (``llm_model``) and how long it took (``execution_time_ms``)."""
    for field, value, choices in (("type", type, DecisionType), ("status", status, DecisionStatus)):
        if value not in choices.values:
            raise ApplicationError(
                f"Unknown decision {field}.",
                extra={field: f"{value!r} is not one of {', '.join(choices.values)}."},
            )
    confidence = to_decimal(confidence, field="confidence", required=False)
    if confidence is not None and not 0 <= confidence <= 1:
        raise ApplicationError(
            "The confidence must be between 0 and 1.",
            extra={"confidence": f"{confidence} is not between 0.00 and 1.00."},
        )
    current, target, stop = _validated_prices(
        current_price=current_price, target_price=target_price, stop_loss=stop_loss
    )
    profit_margin, r_coefficient = decision_ratios(
        current_price=current, target_price=target, stop_loss=stop
    )
    decision = Decision(
        code=code,
        strategy=strategy,
        type=type,
        current_price=current,
        target_price=target,
        stop_loss=stop,
        profit_margin=profit_margin,
        r_coefficient=r_coefficient,
        analysis_text=analysis_text or "",
        workflow_execution=workflow_execution,
        price_at=price_at,
        proposed_price=to_decimal(proposed_price, field="proposed_price", required=False),
        status=status,
        error_message=error_message,
        confidence=None if confidence is None else quantize(confidence, CONFIDENCE_PLACES),
        llm_model=llm_model or "",
        execution_time_ms=execution_time_ms,
    )
    if created_at is not None:
        decision.created_at = created_at
    decision.save()
    return decision


def decisions_purge(*, now=None, days=None):
    """Delete the decisions older than ``days`` (``DECISION_RETENTION_DAYS``) that led to no
    order (seed 002's retention); a decision behind an order stays as long as its order,
    which is never deleted. Returns what it deleted."""
    days = settings.DECISION_RETENTION_DAYS if days is None else days
    before = (now or timezone.now()) - timedelta(days=days)
    stale = Decision.objects.filter(created_at__lt=before).exclude(
        Exists(Order.objects.filter(decision=OuterRef("pk")))
    )
    deleted = delete_in_batches(stale)
    logger.info("retention: deleted %s decisions made before %s that led to no order",
                deleted, before.isoformat())  # fmt: skip
    return {"decisions_deleted": deleted, "before": before.isoformat()}


# --- Strategies -----------------------------------------------------------------------------


def strategy_steps(*, strategy_type, workflow):
    """The steps a strategy runs and their default parameters.

    With no workflow, the legacy inline template of the strategy's type.
    """
    if workflow is not None:
        return workflow.steps, dict(workflow.default_params or {})
    template = TEMPLATES.get(strategy_type, TEMPLATES["custom"])
    return template["steps"], dict(template["default_params"])


def params_check(*, type, param, workflow):
    """Refuse ``param`` when the strategy's workflow could not run with it."""
    _strategy_check(name="-", type=type, param=param, workflow=workflow)


def _strategy_check(*, name, type, param, workflow):
    problems = {}
    if not str(name or "").strip():
        problems["name"] = "This field is required."
    if type not in StrategyType.values:
        problems["type"] = f"{type!r} is not one of {', '.join(StrategyType.values)}."
    if not isinstance(param, dict):
        problems["param"] = "Must be an object of parameter names to values."
    elif "type" not in problems:
        steps, defaults = strategy_steps(strategy_type=type, workflow=workflow)
        param_problems = params_errors(steps, {**defaults, **param})
        if param_problems:
            problems["param"] = param_problems
    if problems:
        raise ApplicationError("The strategy is not valid.", extra=problems)


@transaction.atomic
def strategy_create(
    *, name, type, param=None, workflow=None, codes=(), active=True,
    schedule_interval_minutes=None, schedule_crontab="",
):  # fmt: skip
    param = {} if param is None else param
    _strategy_check(name=name, type=type, param=param, workflow=workflow)
    schedule_check(interval_minutes=schedule_interval_minutes, crontab=schedule_crontab)
    strategy = Strategy.objects.create(
        name=name,
        type=type,
        param=param,
        workflow=workflow,
        active=active,
        schedule_interval_minutes=schedule_interval_minutes,
        schedule_crontab=schedule_crontab or "",
    )
    strategy.codes.set(codes)
    strategy_schedule_sync(strategy=strategy)
    return strategy


def strategy_clone(*, strategy):
    """A new strategy "NAME (Copy)" (cut to fit) with the same workflow, parameters, codes and
    schedule; it starts paused, so that two copies never trade side by side unasked."""
    return strategy_create(
        name=copy_name(strategy.name, max_length=Strategy._meta.get_field("name").max_length),
        type=strategy.type,
        param=dict(strategy.param or {}),
        workflow=strategy.workflow,
        codes=list(strategy.codes.all()),
        active=False,
        schedule_interval_minutes=strategy.schedule_interval_minutes,
        schedule_crontab=strategy.schedule_crontab,
    )


@transaction.atomic
def strategy_update(*, strategy, codes=None, **fields):
    """Change a strategy; its parameters are checked against what its workflow needs."""
    unknown = fields.keys() - STRATEGY_EDITABLE
    if unknown:
        raise ApplicationError(
            "Unknown strategy fields.", extra={name: "Not an editable field." for name in unknown}
        )
    if fields == {"active": False} and codes is None:  # PATCH {"active": false}: a pause
        return strategy_pause(strategy=strategy)
    strategy = Strategy.objects.select_for_update().get(pk=strategy.pk)
    for name, value in fields.items():
        setattr(strategy, name, value)
    _strategy_check(
        name=strategy.name, type=strategy.type, param=strategy.param, workflow=strategy.workflow
    )
    schedule_check(
        interval_minutes=strategy.schedule_interval_minutes, crontab=strategy.schedule_crontab
    )
    strategy.save()
    if codes is not None:
        strategy.codes.set(codes)
    strategy_schedule_sync(strategy=strategy)
    return strategy


@transaction.atomic
def strategy_pause(*, strategy):
    """Stop the strategy's scheduled runs. Always allowed, with no check of its parameters:
    a strategy whose workflow changed under it is the one whose failing runs must stop."""
    strategy = Strategy.objects.select_for_update().get(pk=strategy.pk)
    strategy.active = False
    strategy.save(update_fields=["active", "updated_at"])
    strategy_schedule_sync(strategy=strategy)  # the one way a schedule follows its strategy
    return strategy


def strategy_resume(*, strategy):
    """Schedule the strategy's runs again: checked like any change, since a workflow that no
    longer fits its parameters would only start runs that fail."""
    return strategy_update(strategy=strategy, active=True)


@transaction.atomic
def strategy_delete(*, strategy):
    """Delete a strategy and its schedule; one with decisions or runs is kept as history."""
    from django.db.models import ProtectedError

    strategy_schedule_remove(strategy=strategy)
    try:
        strategy.delete()
    except ProtectedError:
        raise ApplicationError(
            f"Strategy {strategy.name!r} has decisions or executions and is kept as history.",
            extra={"strategy": "Pause it instead (active = false)."},
        ) from None
