"""The risk gate, each rule refusing in turn, with hand-computed numbers."""

from decimal import Decimal

import pytest

from marketdata.tests.factories import CodeFactory
from orders.models import OrderStatus, Position
from orders.tests.factories import OrderFactory
from strategies.risk import risk_check
from strategies.services import decision_record
from strategies.tests.factories import StrategyFactory

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture
def strategy():
    return StrategyFactory()


def decide(strategy, type_="buy", current="100", target="110", stop="95", code=None):
    return decision_record(
        code=code or CodeFactory(), strategy=strategy, type=type_, current_price=current,
        target_price=target, stop_loss=stop,
    )  # fmt: skip


def failed_rule(outcome):
    return next((rule for rule, passed, _ in outcome.checks if not passed), None)


def test_a_sound_long_is_sized_by_risk_and_capped_at_ten_percent(strategy):
    outcome = risk_check(decision=decide(strategy), strategy=strategy, params={})
    assert outcome.approved
    # floor(100000 x 0.01 / |100 - 95|) = 200, capped at floor(10000 / 100) = 100
    assert (outcome.side, outcome.quantity, outcome.entry) == ("BUY", 100, D("100"))
    assert [rule for rule, _, _ in outcome.checks] == [
        "action", "trading_halted", "entries_per_symbol", "sides", "reward_to_risk",
        "profit_margin", "quantity", "open_positions", "open_order", "daily_orders",
    ]  # fmt: skip


def test_a_sound_short(strategy):
    decision = decide(strategy, "sell", current="50", target="40", stop="55")
    params = {"account_size": "20000", "allow_short": True}
    outcome = risk_check(decision=decision, strategy=strategy, params=params)
    # floor(20000 x 0.01 / 5) = 40; cap floor(2000 / 50) = 40
    assert outcome.approved and (outcome.side, outcome.quantity) == ("SELL", 40)
    assert ("short", True, "allow_short is on") in outcome.checks
    refused = risk_check(decision=decision, strategy=strategy, params={"account_size": "20000"})
    assert failed_rule(refused) == "short"


def test_hold_places_nothing(strategy):
    decision = decision_record(
        code=CodeFactory(), strategy=strategy, type="hold", current_price="9"
    )
    outcome = risk_check(decision=decision, strategy=strategy, params={})
    assert not outcome.approved and failed_rule(outcome) == "action"


@pytest.mark.parametrize(
    ("kwargs", "params", "rule"),
    [
        ({"target": "90"}, {}, "sides"),  # a buy whose target is below the price
        ({"type_": "sell", "target": "110", "stop": "95"}, {"allow_short": True}, "sides"),
        ({"target": "104", "stop": "95"}, {}, "reward_to_risk"),  # 4 / 5 = 0.8 < 1
        (
            {"target": "104", "stop": "95"},
            {"min_r_coefficient": "0.5", "min_profit_margin": "0.04"},
            None,
        ),
        ({"target": "103", "stop": "99"}, {}, "profit_margin"),  # 0.03 < 0.05
        (
            {"current": "2000", "target": "2200", "stop": "1900"},
            {"account_size": "1000"},
            "quantity",
        ),
    ],
)
def test_each_rule_refuses(strategy, kwargs, params, rule):
    outcome = risk_check(decision=decide(strategy, **kwargs), strategy=strategy, params=params)
    assert failed_rule(outcome) == rule
    assert outcome.approved is (rule is None)


def test_a_single_share_riskier_than_the_budget_is_refused(strategy):
    # floor(1000 x 0.001 / 5) = 0: one share would risk 5 against a budget of 1
    params = {"account_size": "1000", "risk_per_trade": "0.001"}
    outcome = risk_check(decision=decide(strategy), strategy=strategy, params=params)
    assert not outcome.approved and outcome.quantity is None
    assert outcome.checks[-1] == (
        "quantity",
        False,
        "floor(1000 x 0.001 / 5) = 0, cap 10% of equity = 1: 0",
    )
    params["risk_per_trade"] = "0.005"  # a budget of 5: one share
    outcome = risk_check(decision=decide(strategy), strategy=strategy, params=params)
    assert outcome.approved and outcome.quantity == 1


def test_a_missing_stop_falls_back_to_two_atr(strategy):
    decision = decide(strategy, stop=None)
    outcome = risk_check(decision=decision, strategy=strategy, params={}, atr=2.5)
    assert outcome.stop_loss == D("95.0")  # 100 - 2 x 2.5
    assert outcome.approved
    no_atr = risk_check(decision=decision, strategy=strategy, params={})
    assert failed_rule(no_atr) == "stop_loss"


def test_ten_open_positions_is_the_limit(strategy):
    for _ in range(10):
        Position.objects.create(instrument=CodeFactory(), quantity=1, average_cost=1)
    outcome = risk_check(decision=decide(strategy), strategy=strategy, params={})
    assert failed_rule(outcome) == "open_positions"


def test_no_second_order_while_one_is_open_for_the_code(strategy):
    code = CodeFactory()
    earlier = decide(strategy, code=code)
    OrderFactory(instrument=code, decision=earlier, status=OrderStatus.SUBMITTED)
    outcome = risk_check(decision=decide(strategy, code=code), strategy=strategy, params={})
    assert failed_rule(outcome) == "entries_per_symbol"  # its working entry counts
    other = StrategyFactory()  # another strategy may still trade the code
    assert risk_check(decision=decide(other, code=code), strategy=other, params={}).approved


def test_daily_order_cap(strategy):
    OrderFactory(decision=decide(strategy), status=OrderStatus.FILLED)
    params = {"max_orders_per_day": "1"}
    outcome = risk_check(decision=decide(strategy), strategy=strategy, params=params)
    assert failed_rule(outcome) == "daily_orders"
