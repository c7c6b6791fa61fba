"""The loopback IB Gateway as the unmodified ib_insync client sees it, over a real socket.

No database: these talk to the gateway directly, as a user's own script or notebook would.
The simulated clock is fixed (a Friday after the close), so history does not move while a
test runs.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tradingsite.broker.ib import ibapi
from tradingsite.broker.loop import ensure_event_loop
from tradingsite.ibgateway import MAX_SERVER_VERSION, MIN_SERVER_VERSION, LoopbackGateway
from tradingsite.ibgateway.book import commission_for

BASE_DIR = Path(__file__).resolve().parents[2]
FRIDAY_EVENING = datetime(2024, 6, 14, 21, 0, tzinfo=UTC)  # 17:00 New York, after the close
D = Decimal


def start_gateway(**options):
    gateway = LoopbackGateway(host="127.0.0.1", port=0, now=FRIDAY_EVENING, **options)
    gateway.start()
    return gateway


def connect(gateway, client_id=1):
    ensure_event_loop()
    ib = ibapi.IB()
    ib.connect("127.0.0.1", gateway.port, clientId=client_id, timeout=5)
    return ib


@pytest.fixture
def gateway():
    server = start_gateway(seed=7)
    yield server
    server.stop()


@pytest.fixture
def ib(gateway):
    client = connect(gateway)
    yield client
    client.disconnect()


def until(ib, condition, timeout=5.0):
    """Let ib_insync's loop run until ``condition()`` holds; False on timeout."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        ib.sleep(0.02)
    return True


def stock(ib, symbol):
    [contract] = ib.qualifyContracts(ibapi.Stock(symbol, "SMART", "USD"))
    return contract


def daily_bars(ib, contract, duration="1 M"):
    bars = ib.reqHistoricalData(contract, "", duration, "1 day", "TRADES", True)
    return [(b.date, b.open, b.high, b.low, b.close, b.volume) for b in bars]


def money(value):
    return D(str(value)).quantize(D("0.0001"))


# --- connection and contracts ---------------------------------------------------------------
def test_connect_reports_the_managed_paper_account(ib, gateway):
    assert ib.isConnected()
    assert ib.managedAccounts() == ["DU0000001"] == [gateway.account]
    assert MIN_SERVER_VERSION <= ib.client.serverVersion() <= MAX_SERVER_VERSION
    # What connect() asked for on its own arrived: an empty paper account, no orders.
    assert ib.positions() == [] and ib.openTrades() == [] and ib.fills() == []
    cash = {v.tag: v.value for v in ib.accountValues() if v.currency == "USD"}
    assert D(cash["TotalCashValue"]) == D("1000000")


def test_contract_details_of_a_known_symbol(ib):
    [details] = ib.reqContractDetails(ibapi.Stock("AAPL", "SMART", "USD"))
    contract = details.contract
    assert (contract.conId, contract.symbol, contract.secType) == (265598, "AAPL", "STK")
    assert (contract.exchange, contract.primaryExchange, contract.currency) == (
        "SMART",
        "NASDAQ",
        "USD",
    )
    assert details.longName == "APPLE INC"
    assert details.minTick == pytest.approx(0.01)


def test_contract_details_of_an_unknown_symbol_is_error_200(ib):
    errors = []
    ib.errorEvent += lambda req_id, code, message, contract: errors.append((code, message))
    assert ib.reqContractDetails(ibapi.Stock("NOT A SYMBOL", "SMART", "USD")) == []
    assert (200, "No security definition has been found for the request") in errors
    assert ib.qualifyContracts(ibapi.Stock("AAPL", "LSE", "USD")) == []


# --- historical bars ------------------------------------------------------------------------
def test_history_is_the_same_for_the_same_seed_and_differs_for_another(ib, gateway):
    first = daily_bars(ib, stock(ib, "AAPL"))
    twin = start_gateway(seed=7)
    other = start_gateway(seed=8)
    try:
        twin_ib, other_ib = connect(twin, client_id=2), connect(other, client_id=3)
        assert daily_bars(twin_ib, stock(twin_ib, "AAPL")) == first
        assert daily_bars(other_ib, stock(other_ib, "AAPL")) != first
        twin_ib.disconnect()
        other_ib.disconnect()
    finally:
        twin.stop()
        other.stop()
    # One month of sessions up to the fixed clock's Friday, each a sound OHLC bar.
    assert 19 <= len(first) <= 23
    assert first[-1][0] == date(2024, 6, 14)
    assert all(low <= min(o, c) and max(o, c) <= high for _, o, high, low, c, _ in first)
    assert all(volume > 0 for *_, volume in first)


@pytest.mark.parametrize(
    ("duration", "bar_size"),
    [("1 Y", "1 secs"), ("3600 S", "1 secs"), ("2 D", "5 secs")],
)
def test_a_duration_too_long_for_the_bar_size_is_error_162(ib, duration, bar_size):
    errors = []
    ib.errorEvent += lambda req_id, code, message, contract: errors.append((req_id, code, message))
    bars = ib.reqHistoricalData(stock(ib, "AAPL"), "", duration, bar_size, "TRADES", True)
    # ib_insync ends the refused request with no bars; IB's reason carries the request's id.
    assert list(bars) == []
    assert errors == [
        (bars.reqId, 162, "Historical Market Data Service error message:Time length exceed max.")
    ]


def test_the_longest_duration_ib_allows_for_a_bar_size_is_served(ib):
    end = datetime(2024, 6, 14, 19, 30, tzinfo=UTC)  # 15:30 New York, in the session
    bars = ib.reqHistoricalData(stock(ib, "AAPL"), end, "1800 S", "1 secs", "TRADES", True)
    assert len(bars) == 1800


def test_history_from_a_csv_file_per_symbol(tmp_path):
    (tmp_path / "ACME.csv").write_text(
        "date,open,high,low,close,volume\n"
        "2024-03-04,10.00,10.50,9.90,10.40,1200\n"
        "2024-03-05,10.40,10.80,10.30,10.75,900\n"
        "2024-03-06,10.75,10.90,10.10,10.20,1500\n"
        "2024-03-07,10.20,10.35,10.00,10.30,700\n"
        "2024-03-08,10.30,11.00,10.25,10.95,2100\n"
    )
    server = start_gateway(seed=7, bars_dir=tmp_path)
    try:
        client = connect(server)
        acme = stock(client, "ACME")
        assert acme.conId > 0
        assert daily_bars(client, acme) == [
            (date(2024, 3, 4), 10.00, 10.50, 9.90, 10.40, 1200),
            (date(2024, 3, 5), 10.40, 10.80, 10.30, 10.75, 900),
            (date(2024, 3, 6), 10.75, 10.90, 10.10, 10.20, 1500),
            (date(2024, 3, 7), 10.20, 10.35, 10.00, 10.30, 700),
            (date(2024, 3, 8), 10.30, 11.00, 10.25, 10.95, 2100),
        ]
        weekly = client.reqHistoricalData(acme, "", "1 M", "1 week", "TRADES", True)
        assert [(b.open, b.high, b.low, b.close, b.volume) for b in weekly] == [
            (10.00, 11.00, 9.90, 10.95, 6400)
        ]
        assert server.price("ACME") == D("10.95")  # trading starts at the file's last close
        client.disconnect()
    finally:
        server.stop()


# --- orders ---------------------------------------------------------------------------------
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


# --- market data and the master client --------------------------------------------------
@pytest.mark.parametrize(("data_type", "delayed"), [(1, False), (3, True)])
def test_market_data_snapshots_and_streams_follow_the_price(gateway, data_type, delayed):
    ib = connect(gateway)
    try:
        ib.reqMarketDataType(data_type)
        spy = stock(ib, "SPY")
        gateway.set_price("SPY", "501.25")
        [snapshot] = ib.reqTickers(spy)
        assert (snapshot.last, snapshot.bid, snapshot.ask) == (501.25, 501.24, 501.26)
        assert snapshot.marketDataType == data_type  # delayed data says so (tick types 66+)
        assert snapshot.close > 0 and snapshot.high >= snapshot.low > 0

        streaming = ib.reqMktData(spy, "", False, False)
        assert until(ib, lambda: streaming.last == 501.25)
        gateway.set_price("SPY", "499.10")
        assert until(ib, lambda: streaming.last == 499.10)
        assert streaming.marketDataType == data_type
        assert (streaming.marketDataType in (3, 4)) is delayed
    finally:
        ib.disconnect()


def test_the_master_client_hears_every_clients_orders_fills_and_commissions():
    gateway = start_gateway(seed=7, master_client_id=9)
    trader, master = connect(gateway, client_id=1), connect(gateway, client_id=9)
    bystander = connect(gateway, client_id=2)
    heard = {"master": [], "bystander": []}
    master.commissionReportEvent += lambda trade, fill, report: heard["master"].append(
        (trade.order.orderId, trade.order.orderRef, fill.execution.shares, report.commission)
    )
    bystander.commissionReportEvent += lambda *event: heard["bystander"].append(event)
    try:
        order = ibapi.MarketOrder("BUY", 10)
        order.orderRef = "ts-1"
        trade = trader.placeOrder(stock(trader, "AAPL"), order)
        assert until(trader, lambda: trade.orderStatus.status == "Filled")
        assert until(master, lambda: heard["master"] != [])
        assert heard["master"] == [(trade.order.orderId, "ts-1", 10.0, 1.0)]
        [seen] = [t for t in master.trades() if t.order.orderRef == "ts-1"]
        assert seen.orderStatus.status == "Filled" and seen.order.clientId == 1
        bystander.sleep(0.2)
        assert heard["bystander"] == []  # only the master hears another client's orders
    finally:
        for client in (trader, master, bystander):
            client.disconnect()
        gateway.stop()


# --- manage.py ibgateway --------------------------------------------------------------------
def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def manage_ibgateway(*arguments):
    return subprocess.Popen(
        [sys.executable, "manage.py", "ibgateway", *arguments],
        cwd=BASE_DIR,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_command_listens_and_serves_a_client():
    port = free_port()
    process = manage_ibgateway("--port", str(port), "--seed", "3", "--date", "2024-06-14")
    try:
        line = process.stdout.readline()
        assert line.strip() == f"Loopback IB Gateway (paper) listening on 127.0.0.1:{port}"
        client = connect(type("Address", (), {"port": port}))
        assert client.managedAccounts() == ["DU0000001"]
        assert stock(client, "MSFT").conId == 272093
        # --date pins the market: it stands after that day's close, and history ends there
        assert abs(client.reqCurrentTime() - FRIDAY_EVENING) < timedelta(minutes=1)
        bars = client.reqHistoricalData(stock(client, "MSFT"), "", "1 W", "1 day", "TRADES", True)
        assert bars[-1].date == date(2024, 6, 14)
        client.disconnect()
    finally:
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert "Loopback IB Gateway stopped." in stdout
    assert "Traceback" not in stderr


def test_the_command_names_a_port_in_use_without_a_traceback():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = manage_ibgateway("--port", str(port))
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 1
    assert f"CommandError: Cannot listen on 127.0.0.1:{port}" in stderr
    assert "Address already in use" in stderr
    assert "Traceback" not in stderr
    assert "listening" not in stdout
