"""Stops, trailing stops, brackets, OCA groups and ``transmit`` at the loopback gateway, as
the unmodified ib_insync client sees them over a real socket."""

import ib_insync as ibapi
import pytest

from .support import D, connect, fills_of, start_gateway, status, until


@pytest.fixture
def aapl(ib, gateway):
    [contract] = ib.qualifyContracts(ibapi.Stock("AAPL", "SMART", "USD"))
    gateway.set_price("AAPL", 200)
    return contract


def book_order(gateway, trade):
    return next(o for o in gateway.orders() if o.order_id == trade.order.orderId)


# --- stops ---------------------------------------------------------------------------------
def test_a_sell_stop_waits_then_fills_at_market_once_the_price_crosses_it(ib, gateway, aapl):
    ib.placeOrder(aapl, ibapi.MarketOrder("BUY", 10))
    stop = ib.placeOrder(aapl, ibapi.StopOrder("SELL", 10, 195))
    assert status(ib, stop, "PreSubmitted")  # IB's word for a stop not yet triggered
    gateway.set_price("AAPL", D("195.50"))
    ib.sleep(0.1)
    assert stop.fills == [] and stop.orderStatus.status == "PreSubmitted"
    gateway.set_price("AAPL", D("194.80"))  # through the stop: a market order now
    assert status(ib, stop, "Filled")
    assert fills_of(ib, stop) == [("SLD", D(10), D("194.80"))]


def test_a_buy_stop_triggers_when_the_price_rises_to_it(ib, gateway, aapl):
    stop = ib.placeOrder(aapl, ibapi.StopOrder("BUY", 5, 205))
    gateway.set_price("AAPL", D("204.99"))
    ib.sleep(0.1)
    assert stop.fills == []
    gateway.set_price("AAPL", 205)
    assert status(ib, stop, "Filled")
    assert fills_of(ib, stop) == [("BOT", D(5), D(205))]


def test_a_stop_limit_becomes_a_limit_order_when_triggered(ib, gateway, aapl):
    order = ibapi.StopLimitOrder("SELL", 10, lmtPrice=194, stopPrice=195)
    trade = ib.placeOrder(aapl, order)
    assert status(ib, trade, "PreSubmitted")
    gateway.set_price("AAPL", D("193.50"))  # triggered, but below its limit: no fill
    assert status(ib, trade, "Submitted")
    assert trade.fills == []
    gateway.set_price("AAPL", D("194.20"))  # back above the limit: the limit fills
    assert status(ib, trade, "Filled")
    assert fills_of(ib, trade) == [("SLD", D(10), D("194.20"))]


def test_a_stop_price_off_the_price_steps_is_error_110(ib, aapl):
    errors = []
    ib.errorEvent += lambda req_id, code, message, contract: errors.append(code)
    trade = ib.placeOrder(aapl, ibapi.StopOrder("SELL", 10, 195.005))
    assert until(ib, lambda: 110 in errors)
    assert trade.fills == []


# --- trailing stops --------------------------------------------------------------------------
def test_a_trailing_stop_by_amount_ratchets_up_then_triggers(ib, gateway, aapl):
    order = ibapi.Order(action="SELL", totalQuantity=10, orderType="TRAIL", auxPrice=2)
    trade = ib.placeOrder(aapl, order)
    assert status(ib, trade, "PreSubmitted")
    assert book_order(gateway, trade).trail_stop_price == D(198)
    for price, stop in ((203, 201), (D("201.50"), 201), (206, 204), (205, 204)):
        gateway.set_price("AAPL", price)  # it follows the price up, never down
        assert book_order(gateway, trade).trail_stop_price == D(stop)
    ib.sleep(0.1)
    assert trade.fills == []
    gateway.set_price("AAPL", D("203.90"))
    assert status(ib, trade, "Filled")
    assert fills_of(ib, trade) == [("SLD", D(10), D("203.90"))]


def test_a_trailing_stop_by_percent_follows_a_short_down(ib, gateway, aapl):
    order = ibapi.Order(action="BUY", totalQuantity=4, orderType="TRAIL", trailingPercent=5)
    trade = ib.placeOrder(aapl, order)
    assert status(ib, trade, "PreSubmitted")
    assert book_order(gateway, trade).trail_stop_price == D(210)
    gateway.set_price("AAPL", 180)
    assert book_order(gateway, trade).trail_stop_price == D(189)
    gateway.set_price("AAPL", D("188.99"))
    ib.sleep(0.1)
    assert trade.fills == []
    gateway.set_price("AAPL", D("189.10"))
    assert status(ib, trade, "Filled")
    assert fills_of(ib, trade) == [("BOT", D(4), D("189.10"))]


@pytest.mark.parametrize("percent", [0, 150])
def test_a_trailing_percent_outside_0_to_100_is_refused(ib, aapl, percent):
    errors = []
    ib.errorEvent += lambda req_id, code, message, contract: errors.append(message)
    order = ibapi.Order(action="SELL", totalQuantity=1, orderType="TRAIL", trailingPercent=percent)
    trade = ib.placeOrder(aapl, order)
    assert until(ib, lambda: errors)
    assert "trailing percent must be between 0 and 100" in errors[0]
    assert trade.fills == []


# --- brackets, OCA and transmit ------------------------------------------------------------
def bracket(ib, contract, *, quantity=10, entry=200, target=210, stop=190):
    parent, take_profit, stop_loss = ib.bracketOrder("BUY", quantity, entry, target, stop)
    return [ib.placeOrder(contract, order) for order in (parent, take_profit, stop_loss)]


def test_a_brackets_children_wait_for_the_parents_fill(ib, gateway, aapl):
    gateway.set_price("AAPL", 202)  # above the entry's limit: the parent rests
    entry, target, stop = bracket(ib, aapl)
    assert status(ib, entry, "Submitted") and status(ib, target, "PreSubmitted")
    gateway.set_price("AAPL", 211)  # through the target, but the parent has not filled
    ib.sleep(0.1)
    assert entry.fills == [] and target.fills == [] and stop.fills == []
    assert target.orderStatus.status == "PreSubmitted"
    gateway.set_price("AAPL", 199)  # the parent fills: now its children work
    assert status(ib, entry, "Filled") and status(ib, target, "Submitted")
    assert stop.orderStatus.status == "PreSubmitted"  # a stop waits for its trigger
    assert target.fills == [] and stop.fills == []


def test_a_bracket_whose_target_fills_cancels_its_stop(ib, gateway, aapl):
    entry, target, stop = bracket(ib, aapl)  # the price is 200: the entry fills at once
    assert status(ib, entry, "Filled") and status(ib, target, "Submitted")
    assert stop.orderStatus.status == "PreSubmitted"
    gateway.set_price("AAPL", D("210.40"))
    assert status(ib, target, "Filled") and status(ib, stop, "Cancelled")
    assert fills_of(ib, target) == [("SLD", D(10), D("210.40"))]
    assert stop.fills == []
    assert gateway.positions() == []


def test_a_bracket_whose_stop_fills_cancels_its_target(ib, gateway, aapl):
    entry, target, stop = bracket(ib, aapl)
    assert status(ib, entry, "Filled")
    gateway.set_price("AAPL", D("189.50"))
    assert status(ib, stop, "Filled") and status(ib, target, "Cancelled")
    assert fills_of(ib, stop) == [("SLD", D(10), D("189.50"))]
    assert gateway.positions() == []


def test_a_partial_fill_of_the_parent_sizes_the_children(aapl):
    server = start_gateway(seed=7, max_fill_size=4)
    try:
        client = connect(server, client_id=2)
        [contract] = client.qualifyContracts(ibapi.Stock("AAPL", "SMART", "USD"))
        server.set_price("AAPL", 202)
        entry, target, stop = bracket(client, contract)
        assert status(client, target, "PreSubmitted")
        assert target.order.totalQuantity == 10
        server.set_price("AAPL", 200)  # 4 of the 10 fill
        assert until(client, lambda: entry.orderStatus.filled == 4)
        assert until(client, lambda: target.order.totalQuantity == 4)
        assert stop.order.totalQuantity == 4
        client.cancelOrder(entry.order)  # the rest is not wanted: 4 stay protected
        assert status(client, entry, "Cancelled")
        server.set_price("AAPL", 211)
        assert status(client, target, "Filled") and status(client, stop, "Cancelled")
        assert fills_of(client, target) == [("SLD", D(4), D(211))]
        assert server.positions() == []
        client.disconnect()
    finally:
        server.stop()


def test_cancelling_an_unfilled_parent_cancels_its_children(ib, gateway, aapl):
    gateway.set_price("AAPL", 205)
    entry, target, stop = bracket(ib, aapl)
    assert status(ib, target, "PreSubmitted")
    ib.cancelOrder(entry.order)
    assert status(ib, entry, "Cancelled")
    assert status(ib, target, "Cancelled") and status(ib, stop, "Cancelled")


def test_a_global_cancel_ends_every_working_order_once(ib, gateway, aapl):
    gateway.set_price("AAPL", 205)
    resting = bracket(ib, aapl)  # its entry rests: the children are held
    filled = bracket(ib, aapl, entry=206)  # its entry fills: the children work
    assert status(ib, filled[0], "Filled") and status(ib, filled[1], "Submitted")
    ib.reqGlobalCancel()
    for trade in [*resting, *filled[1:]]:
        assert status(ib, trade, "Cancelled")
    why = {o.order_id: o.completed_status for o in gateway.orders()}
    # the resting entry took its children with it; they are not cancelled a second time
    assert [why[t.order.orderId] for t in resting] == [
        "Cancelled by Trader", "Cancelled by System (parent)", "Cancelled by System (parent)"
    ]  # fmt: skip
    assert [why[t.order.orderId] for t in filled[1:]] == ["Cancelled by Trader"] * 2
    assert not [o for o in gateway.orders() if o.status in ("PreSubmitted", "Submitted")]


def test_orders_not_transmitted_wait_for_the_one_that_is(ib, gateway, aapl):
    parent = ibapi.LimitOrder("BUY", 10, 201, transmit=False)
    parent.orderId = ib.client.getReqId()
    held = ib.placeOrder(aapl, parent)
    ib.sleep(0.2)
    assert held.fills == [] and book_order(gateway, held).status == "PendingSubmit"
    assert ib.reqAllOpenOrders() == []  # kept at the gateway, not working
    child = ibapi.LimitOrder("SELL", 10, 215, parentId=parent.orderId, transmit=True)
    ib.placeOrder(aapl, child)  # transmits the whole group: the parent fills at 200
    assert status(ib, held, "Filled")
    assert fills_of(ib, held) == [("BOT", D(10), D(200))]


def test_an_oca_group_cancels_the_others_when_one_fills(ib, gateway, aapl):
    orders = [ibapi.LimitOrder("BUY", 5, 195), ibapi.LimitOrder("BUY", 5, 190)]
    trades = [ib.placeOrder(aapl, o) for o in ib.oneCancelsAll(orders, "oca-test-1", 1)]
    assert all(status(ib, t, "Submitted") for t in trades)
    gateway.set_price("AAPL", 194)
    assert status(ib, trades[0], "Filled") and status(ib, trades[1], "Cancelled")


def test_an_oca_group_of_type_2_reduces_the_others_by_each_fill():
    server = start_gateway(seed=7, max_fill_size=3)
    try:
        client = connect(server, client_id=3)
        [contract] = client.qualifyContracts(ibapi.Stock("AAPL", "SMART", "USD"))
        server.set_price("AAPL", 200)
        orders = [ibapi.LimitOrder("SELL", 10, 205), ibapi.StopOrder("SELL", 10, 195)]
        first, second = [
            client.placeOrder(contract, o) for o in client.oneCancelsAll(orders, "oca-2", 2)
        ]
        # both must be working before the price moves, or the stop would arrive after the fill
        assert status(client, first, "Submitted") and status(client, second, "PreSubmitted")
        server.set_price("AAPL", 205)  # 3 of the limit fill: the stop is reduced to 7
        assert until(client, lambda: second.order.totalQuantity == 7)
        server.set_price("AAPL", 194)  # the stop sells the remaining 7
        assert status(client, second, "Filled")
        assert sum(f.execution.shares for f in first.fills + second.fills) == 10
        client.disconnect()
    finally:
        server.stop()
