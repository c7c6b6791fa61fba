"""Column shapes shared by every app, so that a price is the same NUMERIC everywhere.

The schema check's reference (tradingsite/schema/reference.py) spells the same precisions
out by hand: change both together.
"""

from django.db import models


def price_field(**kwargs):
    """A price per share or contract: NUMERIC(18, 6)."""
    return models.DecimalField(max_digits=18, decimal_places=6, **kwargs)


def quantity_field(**kwargs):
    """A number of shares or contracts, fractions allowed: NUMERIC(18, 4)."""
    return models.DecimalField(max_digits=18, decimal_places=4, **kwargs)


def money_field(**kwargs):
    """An amount of money such as P&L: NUMERIC(20, 6)."""
    return models.DecimalField(max_digits=20, decimal_places=6, **kwargs)


def ratio_field(**kwargs):
    """A dimensionless ratio such as r_coefficient or profit_margin: NUMERIC(18, 6)."""
    return models.DecimalField(max_digits=18, decimal_places=6, **kwargs)


def choices_check(field_name, choices, table):
    """A CHECK constraint that makes the database itself refuse values outside ``choices``."""
    return models.CheckConstraint(
        condition=models.Q(**{f"{field_name}__in": choices.values}),
        name=f"ck_{table}_{field_name}",
    )
