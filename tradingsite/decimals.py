"""Exact Decimal parsing and rounding shared by the services. Floats never touch money."""

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from tradingsite.exceptions import ApplicationError

PRICE_PLACES = Decimal("0.000001")  # NUMERIC(18, 6)
RATIO_PLACES = Decimal("0.000001")  # NUMERIC(18, 6)
MONEY_PLACES = Decimal("0.000001")  # NUMERIC(20, 6)


def to_decimal(value, *, field, required=True):
    """Parse ``value`` into a finite Decimal, or refuse naming ``field``.

    Floats go through ``str`` so that 0.1 stays 0.1 instead of its binary expansion.
    """
    if value is None or value == "":
        if required:
            raise ApplicationError(
                f"{field} is required.", extra={field: "This field is required."}
            )
        return None
    if isinstance(value, bool):
        raise ApplicationError(f"{field} must be a number.", extra={field: "Must be a number."})
    try:
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise ApplicationError(
            f"{field} must be a number.", extra={field: f"{value!r} is not a number."}
        ) from None
    if not number.is_finite():
        raise ApplicationError(
            f"{field} must be finite.", extra={field: "Must be a finite number."}
        )
    return number


def quantize(value, places):
    return value.quantize(places, rounding=ROUND_HALF_EVEN)


def plain(number):
    """A Decimal as a person writes it: 17.0000 -> "17", 559.050000 -> "559.05", 1700 stays."""
    return f"{number.normalize():f}"
