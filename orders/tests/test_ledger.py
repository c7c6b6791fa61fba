"""The ledger follows IB: fills booked in IB's execution order whatever order they arrive in,
and each trade's fees are IB's commissions, so its net P&L is IB's realized P&L."""

import dataclasses
import itertools
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from marketdata.services import code_resolve
from marketdata.tests.factories import CodeFactory
from orders.models import OrderExecution, OrderStatus, Position, Trade, TradeExit
from orders.selectors import trades_list
from orders.services import execution_apply, order_place
from orders.tests.factories import OrderFactory
from tradingsite.broker import ExecutionReport, get_broker
from tradingsite.testing.api import SecureAPIClient

pytestmark = pytest.mark.django_db

D = Decimal


def at(minute, second):
    return datetime(2025, 3, 14, 4, minute, second, tzinfo=UTC)


def report(order, exec_id, quantity, price, time, commission=None):
    return ExecutionReport(
        exec_id=exec_id, broker_order_id=0, order_ref=f"ts-{order.pk}",
        conid=order.instrument_id, side=order.side, quantity=D(quantity), price=D(price),
        time=time, commission=commission,
    )  # fmt: skip


def the_issues_three_fills():
    """A manual BUY 10 @ 50.00 at 04:51:30, another client's BUY 10 @ 50.02 and SELL 10 @
    49.97 after it (the issue's case)."""
    code = CodeFactory(symbol="PEP")
    manual = OrderFactory(instrument=code, side="BUY", quantity=10)
    other_buy = OrderFactory(instrument=code, side="BUY", quantity=10)
    other_sell = OrderFactory(instrument=code, side="SELL", quantity=10)
    return code, [
        report(manual, "0001.01", 10, "50.00", at(51, 30), commission=D("1.00")),
        report(other_buy, "0002.01", 10, "50.02", at(52, 0), commission=D("1.00")),
        report(other_sell, "0003.01", 10, "49.97", at(52, 30), commission=D("1.00")),
    ]


def ledger(code):
    """What a trader sees of the contract: each trade by its order, its exits and fees, and
    the positions (open and closed)."""
    trades = [
        (t.order_id, t.entry_price, t.entry_quantity, t.exit_quantity, t.realized_pnl, t.fees)
        for t in Trade.objects.filter(instrument=code).order_by("order_id")
    ]
    exits = sorted(
        (e.trade.order_id, e.execution.exec_id, e.quantity, e.realized_pnl, e.fees)
        for e in TradeExit.objects.filter(trade__instrument=code).select_related(
            "trade", "execution"
        )
    )
    positions = [
        (p.quantity, p.average_cost, p.closed_at)
        for p in Position.objects.filter(instrument=code).order_by("id")
    ]
    return trades, exits, positions


@pytest.mark.parametrize("arrival", list(itertools.permutations(range(3))))
def test_fills_are_booked_in_ibs_order_whatever_order_they_arrive_in(arrival):
    code, fills = the_issues_three_fills()
    for index in arrival:
        execution_apply(report=fills[index])

    trades, exits, positions = ledger(code)
    manual, other_buy = fills[0], fills[1]
    # First in, first out by execution time: the sell closes the manual 50.00 lot.
    assert [(t[1], t[3], t[4]) for t in trades] == [
        (D("50.00"), 10, D("-0.30")),  # (49.97 - 50.00) x 10
        (D("50.02"), None, None),
        # the sell opened nothing
    ]
    assert [e[1] for e in exits] == ["0003.01"]
    # The contract never went flat: one open position, 10 @ 50.02, no closed row.
    assert positions == [(10, D("50.02"), None)]
    assert sum(t[4] or 0 for t in trades) == D("-0.30")
    # Fees: the manual trade carries its entry's commission and the sell's; the open one its own.
    assert [t[5] for t in trades] == [D("2.00"), D("1.00")]
    assert OrderExecution.objects.get(exec_id=manual.exec_id).trade.order_id == trades[0][0]
    assert OrderExecution.objects.get(exec_id=other_buy.exec_id).opened_quantity == 10


def test_a_late_fill_that_makes_a_short_a_long_rebooks_the_closed_position():
    """Arrival SELL then BUY (a short covered) while IB bought first: one long closed, no short."""
    code = CodeFactory(symbol="KO")
    buy = OrderFactory(instrument=code, side="BUY", quantity=5)
    sell = OrderFactory(instrument=code, side="SELL", quantity=5)
    execution_apply(report=report(sell, "0005.01", 5, "61.00", at(10, 0)))
    assert Position.objects.get(instrument=code).quantity == -5
    execution_apply(report=report(buy, "0004.01", 5, "60.00", at(9, 0)))

    trade = Trade.objects.get(instrument=code)
    assert (trade.order_id, trade.realized_pnl) == (buy.pk, D("5.00"))  # a long: +1 x 5
    position = Position.objects.get(instrument=code)
    assert (position.quantity, position.closed_at) == (0, at(10, 0))


def test_a_commission_reported_after_its_fill_lands_on_the_trades_it_touched():
    code, fills = the_issues_three_fills()
    for fill in fills:  # IB sends the commission report after the execution
        execution_apply(report=dataclasses.replace(fill, commission=None))
    assert set(Trade.objects.values_list("fees", flat=True)) == {0}
    sell = fills[2]
    execution_apply(report=sell)  # the same execId again, now with IB's commission
    closed = Trade.objects.get(exits__isnull=False)
    assert closed.fees == D("1.00")
    assert closed.exits.get().fees == D("1.00")
    execution_apply(report=fills[0])  # the closed trade's entry commission
    closed.refresh_from_db()
    assert (closed.fees, closed.exits.get().fees) == (D("2.00"), D("2.00"))
    assert OrderExecution.objects.count() == 3


def test_net_pnl_of_a_partial_exit_is_ibs_realized_pnl(gateway, wait_for):
    """Over the real socket: BUY 10, SELL 4. IB's commission report for the sell carries its
    realized P&L after commissions (its average cost includes the entry's); the API's net P&L
    of the trade is the same, and its fees are the difference."""
    code = code_resolve(symbol="MSFT")
    bought = order_place(code=code, side="BUY", quantity=10, order_type="MKT", tif="DAY")
    assert wait_for(lambda: Trade.objects.filter(order=bought, fees__gt=0).exists())
    gateway.set_price("MSFT", gateway.price("MSFT") + D("1.31"))
    sold = order_place(code=code, side="SELL", quantity=4, order_type="MKT", tif="DAY")
    assert wait_for(
        lambda: OrderExecution.objects.filter(order=sold, commission__isnull=False).exists()
    )
    ib_realized = [
        fill.commissionReport.realizedPNL
        for fill in get_broker().ib.fills()
        if fill.execution.orderId == sold.ibkr_order_id
    ]
    assert len(ib_realized) == 1

    client = SecureAPIClient()
    client.force_authenticate(_staff())
    body = client.get("/api/trades/", {"order_id": bought.pk}).json()["results"][0]
    gross, fees, net = D(body["realized_pnl"]), D(body["fees"]), D(body["net_pnl"])
    assert fees == D("2.00")  # IB's 1.00 on the buy and 1.00 on the sell
    exit_ = Trade.objects.get(order=bought).exits.get()
    assert exit_.fees == D("1.40")  # the sell's 1.00 and 4/10 of the buy's
    assert net == gross - exit_.fees and gross == D("5.24")  # 4 x 1.31
    assert net.quantize(D("0.01")) == D(str(ib_realized[0])).quantize(D("0.01")) == D("3.84")
    assert D(body["exit_quantity"]) == 4
    sold.refresh_from_db()
    assert sold.status == OrderStatus.FILLED


def _staff():
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user("desk", is_staff=True, is_superuser=True)


def test_the_trades_list_reads_net_pnl_in_one_query(django_assert_num_queries):
    code, fills = the_issues_three_fills()
    for fill in fills:
        execution_apply(report=fill)
    with django_assert_num_queries(1):
        rows = {t.order_id: t.net_pnl for t in trades_list()}
    assert sorted(rows.values(), key=str) == sorted([D("-2.30"), None], key=str)
