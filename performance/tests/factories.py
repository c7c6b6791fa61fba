"""Trades of a strategy for its performance figures."""

from datetime import UTC, datetime
from decimal import Decimal

from orders.services import order_fill_record
from orders.tests.factories import OrderFactory
from tradingsite.testing.factories import make_decision

D = Decimal


def at(day, hour=15):
    return datetime(2025, 3, day, hour, tzinfo=UTC)


def fill(code, side, quantity, price, when, *, strategy=None, commission="1.00"):
    """A fill of an order a decision of ``strategy`` stands behind (none: a manual order)."""
    decision = make_decision(code=code, strategy=strategy) if strategy else None
    order = OrderFactory(instrument=code, side=side, quantity=D(quantity), decision=decision)
    return order_fill_record(order=order, quantity=quantity, price=price, at=when,
                             commission=D(commission))  # fmt: skip
