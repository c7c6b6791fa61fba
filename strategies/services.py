"""Writes for strategies and decisions: the business rules, each in one function."""

from tradingsite.decimals import RATIO_PLACES, quantize, to_decimal
from tradingsite.exceptions import ApplicationError

from .models import Decision, DecisionType


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
):
    """Store a decision with its profit margin and r coefficient computed from its prices."""
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
    )
    if created_at is not None:
        decision.created_at = created_at
    decision.save()
    return decision
