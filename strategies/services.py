"""Writes for decisions, and the strategy writes that need no workflow (pause, delete).

A strategy's parameters are checked against its workflow, so its create, update, resume and
clone sit one layer up, in ``workflows.services``.
"""

import logging
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from marketdata.models import Code
from orders.models import Order, OrderStatus, Position, TradingAction, TradingActionKind
from orders.selectors import trading_halt
from orders.services import actor_name, position_exit
from tradingsite.broker import BrokerError, get_broker
from tradingsite.decimals import RATIO_PLACES, quantize, to_decimal
from tradingsite.exceptions import ApplicationError, delete_or_refuse
from tradingsite.querysets import delete_in_batches

from .models import Decision, DecisionStatus, DecisionType, Strategy
from .schedules import strategy_schedule_remove, strategy_schedule_sync

logger = logging.getLogger(__name__)

CONFIDENCE_PLACES = Decimal("0.01")


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
    status=DecisionStatus.SUCCESS,
    error_message=None,
    confidence=None,
    llm_model="",
    execution_time_ms=None,
):
    """A decision, not yet stored, with its profit margin and r coefficient computed from its
    prices (a backtest keeps its decisions in memory).

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


def trading_kill(*, user=None, flatten=False, broker=None):
    """The kill switch: every strategy paused, every working order at IB cancelled (IB's global
    cancel, whichever client placed it), and with ``flatten`` every open position closed at
    market. Recorded with who and when; trading stays halted (no new entries, from any run)
    until a person resumes it (``trading_resume``). Returns the recorded action."""
    action = TradingAction.objects.create(
        kind=TradingActionKind.KILL_SWITCH, user=actor_name(user), flatten=flatten
    )  # halted first: a run between here and the cancel places no entry
    paused = [strategy_pause(strategy=s).name for s in Strategy.objects.filter(active=True)]
    try:
        broker = broker or get_broker()
        broker.cancel_all()
    except BrokerError as exc:  # halted and paused all the same; IB's orders still work
        action.detail = (
            f"Paused {len(paused)} strategies ({', '.join(paused) or 'none active'}); IB could "
            f"not be asked to cancel the working orders: {exc}"
        )
        action.save(update_fields=["detail"])
        raise
    working = (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED)
    broker.wait(0.3)  # IB confirms each cancel with an orderStatus, applied as it comes
    closed = []
    if flatten:
        for position in Position.objects.filter(closed_at__isnull=True):
            code = Code.objects.filter(conid=position.instrument_id).first()
            if code is not None:
                exits = position_exit(code=code, order_type="MKT", broker=broker)
                closed.append(f"{position.quantity:f} {code.symbol} (order {exits[0].pk})")
    left = Order.objects.filter(status__in=working).exclude(role="exit").count()
    action.detail = (
        f"Paused {len(paused)} strategies ({', '.join(paused) or 'none active'}); asked IB to "
        f"cancel every working order ({left} not yet confirmed cancelled)"
        + (f"; closed {', '.join(closed) or 'no position'} at market." if flatten else ".")
    )
    action.save(update_fields=["detail"])
    return action


def trading_resume(*, user=None):
    """Lift the kill switch: entries may be placed again. The strategies stay paused; each is
    resumed by a person (``strategy_resume``)."""
    halt = trading_halt()
    if halt is None:
        raise ApplicationError(
            "Trading is not halted.", extra={"kill_switch": "There is nothing to resume."}
        )
    return TradingAction.objects.create(
        kind=TradingActionKind.RESUME, user=actor_name(user),
        detail=f"Resumed trading halted by {halt.user or 'the system'} at "
        f"{halt.created_at:%Y-%m-%d %H:%M} UTC; strategies stay paused until resumed.",
    )  # fmt: skip
