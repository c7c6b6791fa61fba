"""The account's limits an order answers to, whoever places it: one position at most 10 % of
the equity, at most ``max_open_positions`` open positions, one working order per contract, at
most ``max_orders_per_day`` orders a day, and never more than the IB account can pay for.

A strategy's risk gate (``strategies.risk``) applies them with its own settings; a manual
order (no decision, no strategy) at these defaults (``manual_order_check``).
"""

from datetime import datetime, time
from decimal import Decimal

from django.utils import timezone

from marketdata.models import MarketData
from tradingsite.exceptions import ApplicationError

from .models import Order, OrderSide, OrderStatus, Position

LIMITS = {
    "account_size": Decimal("100000"),
    "max_open_positions": Decimal("10"),
    "max_orders_per_day": Decimal("10"),
}
MAX_POSITION_SHARE = Decimal("0.10")  # one position may cost at most 10 % of equity


def working_order(conid, **scope):
    """An order on ``conid`` still working at IB (``scope``: whose orders count)."""
    return Order.objects.filter(
        instrument_id=conid,
        status__in=(OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED),
        **scope,
    ).first()


def orders_today(now=None, **scope):
    """How many orders (``scope``: whose) were placed since midnight, local time."""
    start = timezone.make_aware(datetime.combine(timezone.localdate(now or timezone.now()), time()))
    return Order.objects.filter(created_at__gte=start, **scope).count()


def open_positions():
    return Position.objects.filter(closed_at__isnull=True).count()


def equity_of(account_size, account):
    """What a strategy may size from: its ``account_size``, capped by what the IB account
    holds (its net liquidation) when the ``account`` summary is known."""
    if account is None:
        return account_size
    return min(account_size, account.net_liquidation)


def _reference_price(code, price, position, market_price=None):
    """The limit price, else IB's price now, else the last price known here (the open
    ``position``'s mark, the cache)."""
    for known in (price, market_price):
        if known is not None:
            return known
    if position is not None and position.current_price:
        return position.current_price
    cached = MarketData.objects.filter(conid=code.conid).order_by("-created_at").first()
    closes = ((cached.data or {}).get("bars") or {}).get("close") if cached else None
    return Decimal(str(closes[-1])) if closes else None


def manual_order_check(*, code, side, quantity, price, market_price=None, account=None):
    """The risk limits a manual order (no decision, no strategy) passes, at the default settings.

    One position costs at most 10 % of the account, at most ``max_open_positions`` open
    positions, one working manual order per contract, at most ``max_orders_per_day`` manual
    orders a day. An order that only reduces a position is never held back by the first two.
    Raises ApplicationError naming the field; the caller holds the lock (see
    ``services.order_place_manual``). ``price`` is the limit, None for a market order,
    whose ``market_price`` is IB's price now. ``account``, when given, is called last, once
    every other rule passed, for IB's account summary: the position's 10 % is then of the
    smaller of the default account size and the account's net liquidation, and the order
    must fit the account's available funds.
    """
    position = Position.objects.filter(instrument_id=code.conid, closed_at__isnull=True).first()
    held = position.quantity if position else Decimal(0)
    after = held + (quantity if side == OrderSide.BUY else -quantity)
    reduces_only = abs(after) <= abs(held) and after * held >= 0
    if not reduces_only:
        cap = LIMITS["account_size"] * MAX_POSITION_SHARE
        reference = _reference_price(code, price, position, market_price)
        if reference is None:
            _refuse(
                {"price": f"No price of {code.symbol} is known to check the position limit: "
                          "send a limit order (LMT with a price)."}
            )  # fmt: skip
        if abs(after) * reference > cap:
            _refuse(
                {"quantity": f"The position would cost {abs(after) * reference:.2f}, over 10 % "
                             f"of the account ({cap:.2f})."}
            )  # fmt: skip
        limit = LIMITS["max_open_positions"]
        if position is None and open_positions() >= limit:
            _refuse(
                {"code_id": f"{limit:.0f} positions are open already (the maximum)."},
            )
    working = working_order(code.conid, decision__isnull=True)
    if working is not None:
        _refuse(
            {"code_id": f"Manual order {working.pk} on {code.symbol} is still working: "
                        "cancel it or wait for its fill."}
        )  # fmt: skip
    placed = orders_today(decision__isnull=True)
    limit = LIMITS["max_orders_per_day"]
    if placed >= limit:
        _refuse(
            {"non_field_errors": f"{placed} manual orders today (the maximum is {limit:.0f})."},
        )
    if not reduces_only and account is not None:
        _account_check(account(), cost=abs(after) * reference, adds=quantity * reference)


def _account_check(summary, *, cost, adds):
    """The IB account holds enough: the position's 10 % of what it is worth, and the funds."""
    cap = equity_of(LIMITS["account_size"], summary) * MAX_POSITION_SHARE
    if cost > cap:
        _refuse(
            {"quantity": f"The position would cost {cost:.2f}, over 10 % of the account "
                         f"({cap:.2f}; its net liquidation is {summary.net_liquidation:.2f})."}
        )  # fmt: skip
    if adds > summary.available_funds:
        _refuse(
            {"quantity": f"The order would cost {adds:.2f}, more than the account's available "
                         f"funds ({summary.available_funds:.2f})."}
        )  # fmt: skip


def _refuse(reasons):
    """A refused manual order: the reason is the message, and the field it concerns."""
    raise ApplicationError(next(iter(reasons.values())), extra=reasons)
