"""The risk gate: the rules a decision must pass before any order is placed.

Each rule's outcome is kept (``RiskOutcome.checks``) so the execution log shows why an order
was or was not placed. Parameters come from the strategy's effective params:
``min_r_coefficient`` (default 1.0: reward at least equal to risk), ``min_profit_margin``
(0.05), ``risk_per_trade`` (0.01 of equity), ``account_size`` (the equity, 100000),
``max_open_positions`` (10), ``max_orders_per_day`` (10).
"""

from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal

from orders.limits import (
    LIMITS,
    MAX_POSITION_SHARE,
    equity_of,
    open_positions,
    orders_today,
    working_order,
)
from tradingsite.decimals import to_decimal

from .services import decision_ratios

DEFAULTS = {
    "min_r_coefficient": Decimal("1.0"),
    "min_profit_margin": Decimal("0.05"),
    "risk_per_trade": Decimal("0.01"),
    **LIMITS,  # account_size, max_open_positions, max_orders_per_day
}
ATR_STOP_MULTIPLE = Decimal("2")


@dataclass
class RiskOutcome:
    side: str | None = None
    quantity: int | None = None
    entry: Decimal | None = None
    stop_loss: Decimal | None = None
    target_price: Decimal | None = None
    checks: list = field(default_factory=list)  # (rule, passed, detail)

    @property
    def approved(self):
        return bool(self.checks) and all(passed for _, passed, _ in self.checks)

    def record(self, rule, passed, detail):
        self.checks.append((rule, passed, detail))
        return passed


def _setting(params, overrides, name):
    value = overrides.get(name, params.get(name, DEFAULTS[name]))
    return to_decimal(value, field=name)


class LiveBook:
    """The book the risk gate counts in: the site's own orders and positions (a backtest
    passes its simulated book, with the same three questions)."""

    @staticmethod
    def open_positions():
        return open_positions()

    @staticmethod
    def working_order(conid, *, strategy):
        return working_order(conid, decision__strategy=strategy)

    @staticmethod
    def orders_today(now, *, strategy):
        return orders_today(now, decision__strategy=strategy)


def risk_check(
    *, decision, strategy, params, overrides=None, atr=None, now=None, account=None, book=None
):
    """Apply every rule to ``decision``; stops at the first rule that fails. ``account``, when
    given, is called once the rules before sizing passed, for IB's account summary: sizing
    never exceeds what the account holds."""
    overrides = {k: v for k, v in (overrides or {}).items() if v not in (None, "")}
    outcome = RiskOutcome()
    if not outcome.record(
        "action", decision.type in ("buy", "sell"), f"decision is {decision.type}"
    ):
        return outcome
    outcome.side = "BUY" if decision.type == "buy" else "SELL"
    entry = outcome.entry = decision.current_price
    direction = 1 if decision.type == "buy" else -1

    stop = decision.stop_loss
    if stop is None:
        if atr is None:
            outcome.record("stop_loss", False, "no stop in the decision and no ATR to place one")
            return outcome
        stop = entry - direction * ATR_STOP_MULTIPLE * to_decimal(atr, field="atr")
        outcome.record("stop_loss", True, f"no stop in the decision: {entry} -/+ 2 x ATR = {stop}")
    outcome.stop_loss = stop
    target = outcome.target_price = decision.target_price
    sides_ok = (
        target is not None
        and stop > 0
        and (target - entry) * direction > 0
        and (entry - stop) * direction > 0
    )
    if not outcome.record(
        "sides",
        sides_ok,
        f"target {target} and stop {stop} around entry {entry} for a {decision.type}",
    ):
        return outcome

    margin, r = decision_ratios(current_price=entry, target_price=target, stop_loss=stop)
    reward_to_risk = -r
    minimum = _setting(params, overrides, "min_r_coefficient")
    if not outcome.record(
        "reward_to_risk", reward_to_risk >= minimum, f"{reward_to_risk} (minimum {minimum})"
    ):
        return outcome
    minimum = _setting(params, overrides, "min_profit_margin")
    if not outcome.record("profit_margin", margin >= minimum, f"{margin} (minimum {minimum})"):
        return outcome

    account = account() if account is not None else None
    equity = equity_of(_setting(params, overrides, "account_size"), account)
    risk_per_trade = _setting(params, overrides, "risk_per_trade")
    by_risk = (equity * risk_per_trade / abs(entry - stop)).to_integral_value(ROUND_FLOOR)
    cap = (equity * MAX_POSITION_SHARE / entry).to_integral_value(ROUND_FLOOR)
    quantity = min(by_risk, cap)  # no share when one alone would risk more than the budget
    detail = (
        f"floor({equity} x {risk_per_trade} / {abs(entry - stop)}) = {by_risk}, "
        f"cap 10% of equity = {cap}"
    )
    if account is not None:  # and never more than the account's funds can pay for
        funds = (max(account.available_funds, 0) / entry).to_integral_value(ROUND_FLOOR)
        quantity = min(quantity, funds)
        detail += f", available funds {account.available_funds} pay for {funds}"
    if not outcome.record("quantity", quantity >= 1, f"{detail}: {quantity}"):
        return outcome
    outcome.quantity = int(quantity)

    limit = _setting(params, overrides, "max_open_positions")
    book = book or LiveBook
    held = book.open_positions()
    if not outcome.record("open_positions", held < limit, f"{held} open (maximum {limit})"):
        return outcome

    open_order = book.working_order(decision.code.conid, strategy=strategy)
    if not outcome.record(
        "open_order",
        open_order is None,
        "none open" if open_order is None else f"order {open_order.pk} is still open",
    ):
        return outcome

    placed = book.orders_today(now, strategy=strategy)
    limit = _setting(params, overrides, "max_orders_per_day")
    outcome.record("daily_orders", placed < limit, f"{placed} today (maximum {limit})")
    return outcome
