from decimal import Decimal

import pytest

from marketdata.tests.factories import CodeFactory
from strategies.models import Decision
from strategies.services import decision_ratios, decision_record
from strategies.tests.factories import StrategyFactory
from tradingsite.exceptions import ApplicationError

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("current", "target", "stop", "margin", "r"),
    [
        # long: reward 10, risk 5 -> r = 10 / -5
        ("100", "110", "95", "0.100000", "-2.000000"),
        # short: target below, stop above -> r = -5 / 2
        ("50", "45", "52", "0.100000", "-2.500000"),
        # non-terminating: 10 / -3 and 10 / 30, rounded half-even to 6 places
        ("30", "40", "27", "0.333333", "-3.333333"),
        # a target on the wrong side gives a positive r
        ("20", "19", "18", "0.050000", "0.500000"),
    ],
)
def test_decision_ratios_by_hand(current, target, stop, margin, r):
    profit_margin, r_coefficient = decision_ratios(
        current_price=Decimal(current), target_price=Decimal(target), stop_loss=Decimal(stop)
    )
    assert profit_margin == Decimal(margin)
    assert r_coefficient == Decimal(r)


def test_decision_record_stores_the_ratios():
    decision = decision_record(
        code=CodeFactory(),
        strategy=StrategyFactory(),
        type="buy",
        current_price="187.25",
        target_price="200.00",
        stop_loss="181.15",
        analysis_text="trend up on both timeframes",
    )
    stored = Decision.objects.get(pk=decision.pk)
    # (200 - 187.25) / (181.15 - 187.25) = 12.75 / -6.10 = -2.0901639...
    assert stored.r_coefficient == Decimal("-2.090164")
    # 12.75 / 187.25 = 0.0680907...
    assert stored.profit_margin == Decimal("0.068091")
    assert stored.analysis_text == "trend up on both timeframes"


def test_hold_without_target_or_stop_has_no_ratios():
    decision = decision_record(
        code=CodeFactory(), strategy=StrategyFactory(), type="hold", current_price="10"
    )
    assert decision.r_coefficient is None and decision.profit_margin is None


def test_floats_are_taken_at_their_decimal_value():
    decision = decision_record(
        code=CodeFactory(),
        strategy=StrategyFactory(),
        type="sell",
        current_price=0.3,
        target_price=0.1,
        stop_loss=0.4,
    )
    assert decision.current_price == Decimal("0.3")
    assert decision.r_coefficient == Decimal("-2.000000")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"current_price": "100", "target_price": "110", "stop_loss": "100"}, "stop_loss"),
        ({"current_price": "0", "target_price": "110", "stop_loss": "90"}, "current_price"),
        ({"current_price": "-5", "target_price": "110", "stop_loss": "90"}, "current_price"),
        ({"current_price": "100", "target_price": "-1", "stop_loss": "90"}, "target_price"),
        ({"current_price": "100", "target_price": "110", "stop_loss": "0"}, "stop_loss"),
        ({"current_price": "abc", "target_price": "110", "stop_loss": "90"}, "current_price"),
        ({"current_price": "NaN", "target_price": "110", "stop_loss": "90"}, "current_price"),
        ({"current_price": None}, "current_price"),
    ],
)
def test_bad_prices_are_refused_naming_the_field(kwargs, field):
    with pytest.raises(ApplicationError) as refused:
        decision_record(code=CodeFactory(), strategy=StrategyFactory(), type="buy", **kwargs)
    assert field in refused.value.extra
    assert Decision.objects.count() == 0


def test_unknown_type_is_refused():
    with pytest.raises(ApplicationError) as refused:
        decision_record(
            code=CodeFactory(), strategy=StrategyFactory(), type="maybe", current_price="1"
        )
    assert "type" in refused.value.extra


# --- strategies -----------------------------------------------------------------------------


def test_strategy_params_are_checked_against_its_workflow():
    from workflows.services import strategy_create
    from workflows.tests.factories import WorkflowFactory

    workflow = WorkflowFactory(default_params={"min_r_coefficient": "1", "min_profit_margin": "0"})
    with pytest.raises(ApplicationError) as refused:
        strategy_create(
            name="Needs timeframes",
            type="two_indicator",
            workflow=workflow,
            param={"period_1": "1 year", "bar_1": "1 day"},
        )
    assert refused.value.extra["param"] == {
        "bar_2": "is required by the workflow",
        "period_2": "is required by the workflow",
        "period_1": '\'1 year\' is not an IB duration such as "1 Y", "6 M", "2 W" or "10 D".',
    }


def test_a_strategy_without_workflow_uses_its_type_template():
    from workflows.services import strategy_create, strategy_update

    code = CodeFactory()
    strategy = strategy_create(name="Legacy", type="three_indicator", codes=[code])
    assert strategy.workflow_id is None and list(strategy.codes.all()) == [code]
    strategy = strategy_update(strategy=strategy, param={"period_3": "10 Y", "bar_3": "1 month"})
    assert strategy.param["period_3"] == "10 Y"
    with pytest.raises(ApplicationError) as refused:
        strategy_update(strategy=strategy, param={"bar_3": "1 fortnight"})
    assert set(refused.value.extra["param"]) == {"bar_3"}
