"""Writes for decisions, and the strategy writes that need no workflow (pause, delete).

A strategy's parameters are checked against its workflow, so its create, update, resume and
clone sit one layer up, in ``workflows.services``.
"""

from django.db import transaction

from tradingsite.decimals import RATIO_PLACES, quantize, to_decimal
from tradingsite.exceptions import ApplicationError, delete_or_refuse

from .models import Decision, DecisionType, Strategy
from .schedules import strategy_schedule_remove, strategy_schedule_sync


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


def decision_record(**fields):
    """Store a decision (``decision_build``'s) with its profit margin and r coefficient."""
    decision = decision_build(**fields)
    decision.save()
    return decision


def decision_build(
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
):
    """A decision, not yet stored, with its profit margin and r coefficient computed from its
    prices (a backtest keeps its decisions in memory).

    ``price_at`` is when IB gave ``current_price`` (a live price); ``proposed_price`` the
    model's own price when the decision is made at IB's instead."""
    if type not in DecisionType.values:
        raise ApplicationError(
            "Unknown decision type.",
            extra={"type": f"{type!r} is not one of {', '.join(DecisionType.values)}."},
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
    )
    if created_at is not None:
        decision.created_at = created_at
    return decision


# --- Strategies -----------------------------------------------------------------------------


@transaction.atomic
def strategy_pause(*, strategy):
    """Stop the strategy's scheduled runs. Always allowed, with no check of its parameters:
    a strategy whose workflow changed under it is the one whose failing runs must stop."""
    strategy = Strategy.objects.select_for_update().get(pk=strategy.pk)
    strategy.active = False
    strategy.save(update_fields=["active", "updated_at"])
    strategy_schedule_sync(strategy=strategy)  # the one way a schedule follows its strategy
    return strategy


@transaction.atomic
def strategy_delete(*, strategy):
    """Delete a strategy and its schedule; one with decisions or runs is kept as history."""
    strategy_schedule_remove(strategy=strategy)
    delete_or_refuse(
        strategy,
        message=f"Strategy {strategy.name!r} has decisions or executions and is kept as history.",
        extra={"strategy": "Pause it instead (active = false)."},
    )
