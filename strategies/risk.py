"""The risk gate: the rules a decision must pass before any order is placed.

Each rule's outcome is kept (``RiskOutcome.checks``) so the execution log shows why an order
was or was not placed. Parameters come from the strategy's effective params:
``min_r_coefficient`` (default 1.0: reward at least equal to risk), ``min_profit_margin``
(0.05), ``risk_per_trade`` (0.01 of equity), ``account_size`` (the equity, 100000),
``max_open_positions`` (10), ``max_orders_per_day`` (10), ``max_entries_per_symbol`` (1),
``allow_short`` (false) and ``max_daily_loss_pct`` (none; the site's ``MAX_DAILY_LOSS_PCT``).

A decision against the book's position on its contract is an exit, not an entry: a sell on a
long closes it (a buy on a short), whatever the entry rules say, so that exits always go
through; the gate says so (rule ``position``) and the order is the position's quantity.
"""

from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal

from django.db.models import F, Q

from orders.limits import (
    LIMITS,
    MAX_POSITION_SHARE,
    equity_of,
    open_positions,
    orders_today,
    working_order,
)
from orders.models import Order, OrderRole, OrderStatus, Position, Trade
from tradingsite.decimals import to_decimal
from tradingsite.money import percent_text, r_text

from .services import decision_ratios

DEFAULTS = {
    "min_r_coefficient": Decimal("1.0"),
    "min_profit_margin": Decimal("0.05"),
    "risk_per_trade": Decimal("0.01"),
    **LIMITS,  # account_size, max_open_positions, max_orders_per_day
    "max_entries_per_symbol": Decimal("1"),
}
ATR_STOP_MULTIPLE = Decimal("2")


OPEN, CLOSE = "open", "close"


@dataclass
class RiskOutcome:
    intent: str = OPEN  # open (a bracket) or close (an exit of the position held)
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
    """The book the risk gate counts in: the site's own orders, trades and positions (a
    backtest passes its simulated book, which answers the same questions)."""

    @staticmethod
    def held(code):
        """The open position's signed quantity on ``code`` (0 when flat)."""
        position = Position.objects.filter(instrument_id=code.conid, closed_at__isnull=True).first()
        return position.quantity if position is not None else Decimal(0)

    @staticmethod
    def entries(code, *, strategy):
        """The strategy's open trades plus its working entries on ``code``."""
        open_trades = (
            Trade.objects.filter(instrument_id=code.conid, order__decision__strategy=strategy)
            .filter(Q(exit_quantity__isnull=True) | Q(exit_quantity__lt=F("entry_quantity")))
            .count()
        )
        working = Order.objects.filter(
            instrument_id=code.conid, decision__strategy=strategy, parent_order__isnull=True,
            status__in=(OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED),
        ).exclude(role=OrderRole.EXIT).count()  # fmt: skip
        return open_trades + working

    @staticmethod
    def trading_halt():
        from orders.selectors import trading_halt

        return trading_halt()

    @staticmethod
    def daily_loss_status(*, percent, account_size, now):
        from orders.selectors import daily_loss_status

        return daily_loss_status(percent=percent, account_size=account_size, now=now)

    @staticmethod
    def open_positions():
        return open_positions()

    @staticmethod
    def working_order(conid, *, strategy):  # a bracket's children work for the position
        return working_order(conid, decision__strategy=strategy, parent_order__isnull=True)

    @staticmethod
    def orders_today(now, *, strategy):
        return orders_today(now, decision__strategy=strategy, parent_order__isnull=True)


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
    book = book or LiveBook
    held = book.held(decision.code)
    if held * direction < 0:  # against the position: an exit, whatever the entry rules say
        outcome.intent, outcome.quantity = CLOSE, int(abs(held))
        outcome.record(
            "position", True,
            f"{'long' if held > 0 else 'short'} {abs(held):f} held: the {decision.type} closes it",
        )  # fmt: skip
        return outcome
    if not _entry_rules(outcome, decision=decision, strategy=strategy, params=params,
                        overrides=overrides, held=held, direction=direction, now=now,
                        book=book):  # fmt: skip
        return outcome

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
        "reward_to_risk",
        reward_to_risk >= minimum,
        f"{r_text(r)} (minimum {r_text(-minimum)})",
    ):
        return outcome
    minimum = _setting(params, overrides, "min_profit_margin")
    if not outcome.record(
        "profit_margin", margin >= minimum, f"{percent_text(margin)} (minimum "
        f"{percent_text(minimum)})"
    ):  # fmt: skip
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


def _flag(params, overrides, name, default=False):
    value = overrides.get(name, params.get(name, default))
    return value is True or (isinstance(value, str) and value.lower() in ("true", "1", "yes"))


def _entry_rules(outcome, *, decision, strategy, params, overrides, held, direction, now, book):
    """The rules an entry (opening or adding to a position) passes before its prices are
    looked at: trading not halted, a short allowed, the entries per symbol, the day's loss."""
    halt = book.trading_halt()
    if not outcome.record(
        "trading_halted", halt is None,
        "trading is on" if halt is None else f"halted by {halt.user or 'the system'} at "
        f"{halt.created_at:%Y-%m-%d %H:%M} UTC: no new entries until a person resumes it",
    ):  # fmt: skip
        return False
    if direction < 0:
        allowed = _flag(params, overrides, "allow_short")
        detail = "allow_short is on" if allowed else "opening a short needs allow_short (off)"
        if not outcome.record("short", allowed, detail):
            return False
    limit = _setting(params, overrides, "max_entries_per_symbol")
    entries = book.entries(decision.code, strategy=strategy)
    if not outcome.record(
        "entries_per_symbol", entries < limit,
        f"{entries} open or working on {decision.code.symbol} (maximum {limit}; held "
        f"{held:f})",
    ):  # fmt: skip
        return False
    return _daily_loss_rule(outcome, params=params, overrides=overrides, now=now, book=book)


def _daily_loss_rule(outcome, *, params, overrides, now, book):
    """Today's net realized plus unrealized P&L against ``max_daily_loss_pct`` of the account
    (the strategy's, else the site's ``MAX_DAILY_LOSS_PCT``); off when neither is set."""
    percent = overrides.get("max_daily_loss_pct", params.get("max_daily_loss_pct"))
    account_size = _setting(params, overrides, "account_size")
    status = book.daily_loss_status(
        percent=None if percent in (None, "") else to_decimal(percent, field="max_daily_loss_pct"),
        account_size=account_size, now=now,
    )  # fmt: skip
    if status is None:
        return True
    return outcome.record("daily_loss", not status.breached, status.detail)
