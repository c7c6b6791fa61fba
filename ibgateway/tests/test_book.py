"""The paper account's book: orders fill, rest or are cancelled as IB's would, with IB's
commissions, and positions and account values follow the fills."""

import ib_insync as ibapi
import pytest

from ibgateway.book import commission_for

from .support import D, money, stock, until


def test_a_market_order_fills_at_once_with_ib_commission(ib, gateway):
    aapl = stock(ib, "AAPL")
    price = gateway.price("AAPL")
    trade = ib.placeOrder(aapl, ibapi.MarketOrder("BUY", 300))
    assert until(ib, lambda: trade.orderStatus.status == "Filled")
    assert until(ib, lambda: trade.fills and trade.fills[0].commissionReport.execId)
    [fill] = trade.fills
    assert (fill.execution.shares, fill.execution.side) == (300, "BOT")
    assert money(fill.execution.price) == price
    # USD 0.005 a share: 300 shares pay 1.50 (above the 1.00 minimum, below 1 % of value).
    assert money(fill.commissionReport.commission) == D("1.5000")
    assert money(fill.commissionReport.commission) == commission_for(D(300), price)
    assert trade.orderStatus.avgFillPrice == pytest.approx(float(price))


def test_small_orders_pay_the_minimum_and_cheap_ones_at_most_one_percent(ib, gateway):
    aapl = stock(ib, "AAPL")
    minimum = ib.placeOrder(aapl, ibapi.MarketOrder("BUY", 10))  # 10 x 0.005 = 0.05 -> 1.00
    assert until(ib, lambda: minimum.fills and minimum.fills[0].commissionReport.execId)
    assert money(minimum.fills[0].commissionReport.commission) == D("1.0000")

    gateway.set_price("AAPL", 40)
    capped = ib.placeOrder(aapl, ibapi.MarketOrder("SELL", 2))  # 1 % of 80.00 = 0.80 < 1.00
    assert until(ib, lambda: capped.fills and capped.fills[0].commissionReport.execId)
    assert money(capped.fills[0].commissionReport.commission) == D("0.8000")
    assert commission_for(D(2), D(40)) == D("0.8000")


def test_a_limit_order_fills_only_when_the_price_crosses(ib, gateway):
    aapl = stock(ib, "AAPL")
    gateway.set_price("AAPL", "180.00")
    trade = ib.placeOrder(aapl, ibapi.LimitOrder("BUY", 10, 175.00))
    assert until(ib, lambda: trade.orderStatus.status == "Submitted")

    gateway.set_price("AAPL", "175.01")  # a cent above the limit: still waiting
    ib.sleep(0.2)
    assert trade.orderStatus.status == "Submitted" and trade.fills == []

    gateway.set_price("AAPL", "174.60")  # through the limit: filled at the better price
    assert until(ib, lambda: trade.orderStatus.status == "Filled")
    assert [(f.execution.shares, f.execution.price) for f in trade.fills] == [(10, 174.60)]
    assert trade.orderStatus.filled == 10 and trade.orderStatus.remaining == 0


def test_a_cancelled_order_never_fills(ib, gateway):
    aapl = stock(ib, "AAPL")
    gateway.set_price("AAPL", "180.00")
    trade = ib.placeOrder(aapl, ibapi.LimitOrder("BUY", 5, 170.00))
    assert until(ib, lambda: trade.orderStatus.status == "Submitted")
    ib.cancelOrder(trade.order)
    assert until(ib, lambda: trade.orderStatus.status == "Cancelled")

    gateway.set_price("AAPL", "160.00")
    ib.sleep(0.2)
    assert trade.fills == [] and gateway.executions() == []
    assert ib.openTrades() == []


def test_positions_and_account_values_after_a_fill(ib, gateway):
    aapl = stock(ib, "AAPL")
    gateway.set_price("AAPL", "200.00")
    trade = ib.placeOrder(aapl, ibapi.MarketOrder("BUY", 10))
    assert until(ib, lambda: trade.fills and trade.fills[0].commissionReport.execId)
    assert until(ib, lambda: ib.positions())

    # Bought 10 at 200.00 for a 1.00 commission: IB's average cost includes it.
    [position] = ib.positions()
    assert (position.account, position.contract.conId, position.position) == (
        "DU0000001",
        265598,
        10,
    )
    assert position.avgCost == pytest.approx(200.10)

    def reported(values):
        return {v.tag: D(v.value) for v in values if v.tag in expected and v.currency == "USD"}

    # connect() subscribed to account updates: the fill pushed fresh values.
    expected = {
        "TotalCashValue": D("997999.00"),  # 1,000,000 - 10 x 200.00 - 1.00
        "StockMarketValue": D("2000.00"),
        "NetLiquidation": D("999999.00"),
        "UnrealizedPnL": D("-1.00"),  # the commission, until the price moves
    }
    assert until(ib, lambda: reported(ib.accountValues()) == expected), ib.accountValues()

    # After a move, a fresh account summary values the position at the new price.
    gateway.set_price("AAPL", "210.00")
    expected = {
        "TotalCashValue": D("997999.00"),
        "GrossPositionValue": D("2100.00"),
        "NetLiquidation": D("1000099.00"),
    }
    assert reported(ib.accountSummary()) == expected
    assert gateway.account_values()["UnrealizedPnL"] == D("99.00")  # 10 x (210.00 - 200.10)
    [held] = gateway.positions()
    assert (held.quantity, held.market_value) == (10, D("2100.00"))
