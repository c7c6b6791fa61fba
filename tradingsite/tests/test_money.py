"""Numbers as a trader reads them: the one helper behind the admin, the dashboard and run logs."""

from decimal import Decimal as D

import pytest
from django.template import Context, Template

from marketdata.tests.factories import CodeFactory
from tradingsite.money import money_text, percent_text, price_text, quantity_text, r_text


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("540.820000", "540.82"),  # a US stock's cent
        ("1234.500000", "1,234.50"),
        ("0.523400", "0.5234"),  # below $1 IB's step is a hundredth of a cent
        ("540.823300", "540.8233"),  # an average of fills keeps its digits (up to four)
        ("540.823349", "540.8233"),
        (None, "-"),
    ],
)
def test_a_price_is_shown_at_its_contracts_step(stored, shown):
    assert price_text(None if stored is None else D(stored)) == shown


def test_a_contract_of_unknown_step_shows_its_price_without_trailing_zeros():
    fx = CodeFactory.build(sec_type="CASH", currency="EUR")
    assert price_text(D("1.085250"), code=fx) == "1.08525"


@pytest.mark.parametrize(
    ("stored", "shown"), [("17.0000", "17"), ("0.5000", "0.5"), ("1700", "1,700"), ("-3", "-3")]
)
def test_a_quantity_has_no_trailing_zeros(stored, shown):
    assert quantity_text(D(stored)) == shown


def test_money_has_two_places_and_pnl_a_sign_and_a_colour():
    assert money_text(D("16.279999")) == "16.28"
    assert money_text(D("16.279999"), signed=True) == "+16.28"
    assert money_text(D("-2"), signed=True) == "-2.00"
    assert money_text(D("-0.001"), signed=True) == "0.00"  # no "-0.00", no "+0.00"
    html = Template("{% load money %}{{ gain|pnl }} {{ loss|pnl }} {{ none|pnl }}").render(
        Context({"gain": D("16.279999"), "loss": D("-5"), "none": None})
    )
    assert html == (
        '<span class="pnl pnl-positive">+16.28</span> <span class="pnl pnl-negative">-5.00</span> -'
    )


def test_a_ratio_is_a_percentage_to_two_places():
    assert percent_text(D("0.052345")) == "5.23%"
    assert percent_text(D("0.1")) == "10.00%"


def test_r_reads_as_reward_to_risk_positive_for_a_sound_trade():
    assert r_text(D("-2.000000")) == "2.0 R"  # seed 000's r of a sound long
    assert r_text(D("-1.750000")) == "1.75 R"
    assert r_text(D("-1.333333")) == "1.33 R"
    assert r_text(D("0.5")) == "-0.5 R"  # a target on the wrong side reads as a loss
    assert r_text(None, target_price=None, stop_loss=D("95")) == "no target"
    assert r_text(None, target_price=D("110"), stop_loss=None) == "no stop"
