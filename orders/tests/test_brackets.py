"""Brackets from approved decisions, position-aware entries, close, kill switch and the daily
loss limit, over the real socket to the loopback gateway: IB's side (what works at the
gateway) and ours (the rows, trades and positions a person reads)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from marketdata.services import code_resolve
from orders.models import (
    Order,
    OrderRole,
    OrderStatus,
    Position,
    Trade,
    TradingAction,
    TradingActionKind,
)
from orders.selectors import trading_halt
from orders.services import bracket_place, order_cancel, position_close, position_exit
from strategies.models import Strategy
from strategies.risk import CLOSE, risk_check
from strategies.services import trading_kill, trading_resume
from strategies.tests.factories import StrategyFactory
from tradingsite.exceptions import ApplicationError
from tradingsite.testing.factories import make_decision

D = Decimal
pytestmark = pytest.mark.django_db
WORKING = ("PreSubmitted", "Submitted")


def reload(row):
    return type(row).objects.get(pk=row.pk)


def working_at_ib(gateway):
    return [o for o in gateway.orders() if o.status in WORKING]


def approved_bracket(code, strategy, *, price="200", target="210", stop="190", **params):
    decision = make_decision(code=code, strategy=strategy, current_price=price,
                             target_price=target, stop_loss=stop)  # fmt: skip
    risk = risk_check(decision=decision, strategy=strategy,
                      params={"account_size": "100000", **params})  # fmt: skip
    assert risk.approved, risk.checks
    entry = bracket_place(decision=decision, side=risk.side, quantity=risk.quantity,
                          entry_price=risk.entry, target_price=risk.target_price,
                          stop_loss=risk.stop_loss)  # fmt: skip
    return decision, risk, entry


@pytest.fixture
def aapl(gateway):
    code = code_resolve(symbol="AAPL")
    gateway.set_price("AAPL", 200)
    return code


@pytest.fixture
def strategy():
    return StrategyFactory(active=True)


def children_of(entry):
    by_role = {child.role: child for child in Order.objects.filter(parent_order=entry)}
    return by_role[OrderRole.TAKE_PROFIT], by_role[OrderRole.STOP_LOSS]


def test_a_bracket_whose_target_fills_closes_the_trade_and_cancels_the_stop(
    gateway, aapl, strategy, wait_for
):
    decision, risk, entry = approved_bracket(aapl, strategy)
    target, stop = children_of(entry)
    assert (entry.role, entry.order_type, entry.price, entry.quantity) == ("entry", "LMT", 200, 50)
    assert (target.order_type, target.price, target.side, target.quantity) == (
        "LMT", 210, "SELL", 50
    )  # fmt: skip
    assert (stop.order_type, stop.stop_price, stop.side, stop.tif) == ("STP", 190, "SELL", "GTC")
    assert {target.decision_id, stop.decision_id} == {decision.pk}
    assert target.oca_group == stop.oca_group == f"ts-oca-{entry.pk}"
    assert all(o.ibkr_order_id for o in (entry, target, stop))
    assert wait_for(lambda: reload(entry).status == OrderStatus.FILLED)
    at_ib = {o.order_id: o for o in gateway.orders()}
    assert at_ib[target.ibkr_order_id].status == "Submitted"
    assert at_ib[stop.ibkr_order_id].status == "PreSubmitted"  # working, waiting for 190

    gateway.set_price("AAPL", D("210.40"))
    assert wait_for(lambda: reload(stop).status == OrderStatus.CANCELLED)
    assert reload(target).status == OrderStatus.FILLED
    assert reload(stop).error_message == (
        f"Cancelled by one-cancels-all: the take profit (order {target.pk}) filled."
    )
    trade = Trade.objects.get(order=entry)
    assert (trade.exit_price, trade.exit_quantity) == (D("210.40"), 50)
    assert trade.realized_pnl == D("520.00")  # (210.40 - 200) x 50 (10 % of the account)
    assert not Position.objects.filter(closed_at__isnull=True).exists()
    assert working_at_ib(gateway) == []


def test_a_bracket_whose_stop_fills_closes_the_trade_at_a_loss(gateway, aapl, strategy, wait_for):
    _, _, entry = approved_bracket(aapl, strategy)
    target, stop = children_of(entry)
    assert wait_for(lambda: reload(entry).status == OrderStatus.FILLED)
    gateway.set_price("AAPL", D("189.90"))
    assert wait_for(lambda: reload(target).status == OrderStatus.CANCELLED)
    assert reload(stop).status == OrderStatus.FILLED
    assert Trade.objects.get(order=entry).realized_pnl == D("-505.00")
    assert not Position.objects.filter(closed_at__isnull=True).exists()
    assert working_at_ib(gateway) == []


@pytest.mark.parametrize("gateway", [{"max_fill_size": 30}], indirect=True)
def test_a_partial_fill_of_the_entry_sizes_its_children(gateway, aapl, strategy, wait_for):
    gateway.set_price("AAPL", 201)  # above the entry's limit: it rests
    _, _, entry = approved_bracket(aapl, strategy)
    target, stop = children_of(entry)
    gateway.set_price("AAPL", 200)  # 30 of the 100 fill
    assert wait_for(lambda: reload(entry).filled_quantity == 30)
    assert (reload(target).quantity, reload(stop).quantity) == (30, 30)
    order_cancel(order=entry)  # the rest is not wanted: the 30 stay protected
    assert wait_for(lambda: reload(entry).status == OrderStatus.CANCELLED)
    assert reload(target).status == OrderStatus.SUBMITTED
    gateway.set_price("AAPL", 211)
    assert wait_for(lambda: reload(target).status == OrderStatus.FILLED)
    assert wait_for(lambda: reload(stop).status == OrderStatus.CANCELLED)
    assert Trade.objects.get(order=entry).realized_pnl == D("330.00")
    assert not Position.objects.filter(closed_at__isnull=True).exists()


def test_cancelling_an_unfilled_entry_cancels_its_children(gateway, aapl, strategy, wait_for):
    gateway.set_price("AAPL", 205)
    _, _, entry = approved_bracket(aapl, strategy)
    target, stop = children_of(entry)
    order_cancel(order=entry)
    assert wait_for(lambda: reload(stop).status == OrderStatus.CANCELLED)
    assert (reload(entry).status, reload(target).status) == ("cancelled", "cancelled")
    assert working_at_ib(gateway) == []


def test_a_held_symbol_is_not_bought_again_and_a_sell_closes_the_long(
    gateway, aapl, strategy, wait_for
):
    _, _, entry = approved_bracket(aapl, strategy)
    target, stop = children_of(entry)
    assert wait_for(lambda: reload(entry).status == OrderStatus.FILLED)

    again = make_decision(code=aapl, strategy=strategy, current_price="200", target_price="210",
                          stop_loss="190")  # fmt: skip
    risk = risk_check(decision=again, strategy=strategy, params={})
    assert not risk.approved
    assert risk.checks[-1][:2] == ("entries_per_symbol", False)
    assert "1 open or working on AAPL (maximum 1" in risk.checks[-1][2]
    allowed = risk_check(decision=again, strategy=strategy, params={"max_entries_per_symbol": 2})
    assert allowed.approved

    sell = make_decision(code=aapl, strategy=strategy, type="sell", current_price="200",
                         target_price="190", stop_loss="210")  # fmt: skip
    risk = risk_check(decision=sell, strategy=strategy, params={})
    assert (risk.approved, risk.intent, risk.side, risk.quantity) == (True, CLOSE, "SELL", 50)
    assert risk.checks == [
        ("action", True, "decision is sell"),
        ("position", True, "long 50.0000 held: the sell closes it"),
    ]
    [exit_] = position_exit(code=aapl, order_type="MKT", decision=sell)
    assert (exit_.role, exit_.oca_group, exit_.decision_id) == ("exit", target.oca_group, sell.pk)
    assert wait_for(lambda: reload(stop).status == OrderStatus.CANCELLED)
    assert reload(target).status == OrderStatus.CANCELLED
    assert reload(exit_).status == OrderStatus.FILLED
    assert not Position.objects.filter(closed_at__isnull=True).exists()
    assert working_at_ib(gateway) == []


def test_opening_a_short_needs_allow_short(gateway, aapl, strategy):
    sell = make_decision(code=aapl, strategy=strategy, type="sell", current_price="200",
                         target_price="180", stop_loss="210")  # fmt: skip
    risk = risk_check(decision=sell, strategy=strategy, params={})
    assert risk.checks[-1] == ("short", False, "opening a short needs allow_short (off)")
    assert risk_check(decision=sell, strategy=strategy, params={"allow_short": True}).approved


def test_the_kill_switch_leaves_nothing_working_pauses_and_flattens(
    gateway, aapl, strategy, wait_for, django_user_model
):
    person = django_user_model.objects.create_user("trader", is_staff=True)
    other = StrategyFactory(active=True)
    _, _, held = approved_bracket(aapl, strategy)
    assert wait_for(lambda: reload(held).status == OrderStatus.FILLED)
    msft = code_resolve(symbol="MSFT")
    gateway.set_price("MSFT", 300)
    _, _, resting = approved_bracket(msft, other, price="290", target="320", stop="280")
    assert len(working_at_ib(gateway)) == 5  # two stops, two targets, one entry

    action = trading_kill(user=person, flatten=True)
    assert wait_for(lambda: not Position.objects.filter(closed_at__isnull=True).exists())
    assert working_at_ib(gateway) == []
    assert gateway.positions() == []
    assert wait_for(
        lambda: not Order.objects.filter(status__in=("submitted", "partially_filled")).exists()
    )
    assert not Strategy.objects.filter(active=True).exists()
    assert (action.kind, action.user, action.flatten) == ("kill_switch", "trader", True)
    assert "closed 50.0000 AAPL" in action.detail
    assert trading_halt() == action

    buy = make_decision(code=msft, strategy=other, current_price="300", target_price="330",
                        stop_loss="285")  # fmt: skip
    risk = risk_check(decision=buy, strategy=other, params={})
    assert risk.checks[-1][:2] == ("trading_halted", False)
    trading_resume(user=person)
    assert trading_halt() is None
    assert risk_check(decision=buy, strategy=other, params={}).approved
    assert list(TradingAction.objects.values_list("kind", flat=True)) == ["resume", "kill_switch"]


def test_closing_a_position_already_flat_is_refused_naming_it(gateway, aapl, strategy, wait_for):
    _, _, entry = approved_bracket(aapl, strategy)
    assert wait_for(lambda: reload(entry).status == OrderStatus.FILLED)
    position = Position.objects.get(closed_at__isnull=True)
    exits = position_close(position=position, user="someone")
    assert wait_for(lambda: reload(position).closed_at is not None)
    assert TradingAction.objects.get(kind=TradingActionKind.CLOSE_POSITION).order == exits[0]
    sent = len(gateway.orders())
    with pytest.raises(ApplicationError) as refused:
        position_close(position=position)
    assert "nothing to close" in refused.value.extra["position"]
    assert len(gateway.orders()) == sent  # nothing sent to IB


def test_the_daily_loss_limit_blocks_the_next_entry_not_the_exit(gateway, aapl, strategy, wait_for):
    _, _, entry = approved_bracket(aapl, strategy, max_daily_loss_pct="1")
    assert wait_for(lambda: reload(entry).status == OrderStatus.FILLED)
    gateway.set_price("AAPL", D("191"))  # 50 x -9 = -450 unrealized (limit: 1 % = 1000)
    from orders.services import position_mark_price

    position_mark_price(conid=aapl.conid, price=D("191"))
    msft = code_resolve(symbol="MSFT")
    params = {"max_daily_loss_pct": "1"}
    buy = make_decision(code=msft, strategy=strategy, current_price="300", target_price="330",
                        stop_loss="285")  # fmt: skip
    assert risk_check(decision=buy, strategy=strategy, params=params).approved
    position_mark_price(conid=aapl.conid, price=D("179.50"))  # -1025: past the limit
    risk = risk_check(decision=buy, strategy=strategy, params=params, now=datetime.now(UTC))
    assert risk.checks[-1][:2] == ("daily_loss", False)
    assert "the limit is a loss of 1000.00 (1 % of the account)" in risk.checks[-1][2]
    sell = make_decision(code=aapl, strategy=strategy, type="sell", current_price="179.50",
                         target_price="170", stop_loss="185")  # fmt: skip
    exit_risk = risk_check(decision=sell, strategy=strategy, params=params)
    assert (exit_risk.approved, exit_risk.intent) == (True, CLOSE)  # exits still go through
