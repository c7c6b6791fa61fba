"""Numbers as a trader reads them: one helper per kind of number, used by the admin, the
dashboard, run logs and the ``money`` template filters alike.

- a price at its contract's price step: 540.820000 -> "540.82" (a US stock's cent), a price
  off the step (an average of fills) keeps its digits up to four places;
- a quantity without trailing zeros: 17.0000 -> "17", 0.5000 -> "0.5";
- an amount with two places and thousands separators: 1234.5 -> "1,234.50"; P&L signed
  ("+16.28", "-2.00") and, in HTML, coloured;
- a ratio as a percentage to two places: 0.052345 -> "5.23%";
- a decision's reward-to-risk as "2.0 R": ``-r_coefficient`` (seed 000's r is negative for a
  sound trade, so the stored value stays as the seed defines it), "no target" / "no stop"
  when the decision has none.

None reads "-" everywhere (``NONE``).
"""

from decimal import ROUND_HALF_EVEN, Decimal

from django.utils.html import format_html

NONE = "-"
CENT = Decimal("0.01")
SUB_DOLLAR_STEP = Decimal("0.0001")
MAX_PRICE_PLACES = 4


def price_step(*, sec_type, currency, price):
    """IB's smallest step of a price, where it is known: US stocks move by a cent from $1 up
    and by a hundredth of a cent below (IB refuses other limit prices with error 110). None
    for other contracts, whose steps vary."""
    if sec_type != "STK" or currency != "USD":
        return None
    return CENT if price >= 1 else SUB_DOLLAR_STEP


def _places(number):
    return max(0, -number.normalize().as_tuple().exponent)


def _grouped(number, places):
    return f"{number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN):,.{places}f}"


def price_text(value, *, code=None):
    """``value`` at ``code``'s price step (a US stock's when no code is given)."""
    if value is None:
        return NONE
    value = Decimal(value)
    step = price_step(
        sec_type=getattr(code, "sec_type", "STK"),
        currency=getattr(code, "currency", "USD"),
        price=abs(value),
    )
    if step is None:
        return quantity_text(value)
    places = max(_places(step), min(_places(value), MAX_PRICE_PLACES))
    return _grouped(value, places)


def quantity_text(value):
    if value is None:
        return NONE
    text = f"{Decimal(value).normalize():,f}"
    return "0" if text in ("-0", "0") else text


def money_text(value, *, signed=False):
    if value is None:
        return NONE
    value = Decimal(value)
    text = _grouped(value, 2)
    if text.startswith("-") and text.strip("-0.,") == "":
        text = text[1:]  # -0.001 rounds to "0.00", not "-0.00"
    return f"+{text}" if signed and not text.startswith("-") and text != "0.00" else text


def pnl_class(value):
    if value is None or money_text(value) == "0.00":
        return ""
    return "pnl-positive" if value > 0 else "pnl-negative"


def pnl_html(value):
    """A P&L amount, signed, in a span coloured green (gain) or red (loss)."""
    if value is None:
        return NONE
    text = money_text(value, signed=True)
    return format_html('<span class="pnl {}">{}</span>', pnl_class(value), text)


def percent_text(ratio):
    if ratio is None:
        return NONE
    return f"{_grouped(Decimal(ratio) * 100, 2)}%"


def reward_risk(r_coefficient):
    """Reward-to-risk, positive for a sound trade: ``-r`` (seed 000's r is negative then)."""
    return None if r_coefficient is None else -Decimal(r_coefficient)


def r_text(r_coefficient, *, target_price=NONE, stop_loss=NONE):
    """ "2.0 R" (one place, two when the second is not zero); "no target" or "no stop" when the
    decision has none (pass its prices so the reason can be told)."""
    if r_coefficient is None:
        if target_price is None:
            return "no target"
        if stop_loss is None:
            return "no stop"
        return NONE
    value = reward_risk(r_coefficient).quantize(CENT, rounding=ROUND_HALF_EVEN)
    places = 1 if value == value.quantize(Decimal("0.1")) else 2
    return f"{_grouped(value, places)} R"


def decision_r_text(decision):
    return r_text(
        decision.r_coefficient, target_price=decision.target_price, stop_loss=decision.stop_loss
    )
