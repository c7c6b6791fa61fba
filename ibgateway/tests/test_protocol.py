"""The wire protocol as the unmodified ib_insync client sees it: the handshake, contract
details and IB's errors, and the master client that hears every client's orders."""

import ib_insync as ibapi
import pytest

from ibgateway import MAX_SERVER_VERSION, MIN_SERVER_VERSION

from .support import D, connect, start_gateway, stock, until


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


def test_the_universe_is_finite_so_a_typo_is_refused_as_ib_refuses_it(tmp_path):
    """Its table and its bars files: APPL (AAPL mistyped) or ZZZZQ get error 200, as at IB."""
    (tmp_path / "UPCO.csv").write_text("date,open,high,low,close,volume\n"
                                       "2024-06-13,10,11,9,10.5,1000\n")  # fmt: skip
    gateway = start_gateway(seed=7, bars_dir=tmp_path)
    ib = connect(gateway)
    errors = []
    ib.errorEvent += lambda req_id, code, message, contract: errors.append((code, message))
    try:
        for typo in ("APPL", "ZZZZQ"):
            assert ib.reqContractDetails(ibapi.Stock(typo, "SMART", "USD")) == []
        assert errors == [(200, "No security definition has been found for the request")] * 2
        assert [m.contract.symbol for m in ib.reqMatchingSymbols("ZZZZQ") or []] == []
        [upco] = ib.reqContractDetails(ibapi.Stock("UPCO", "SMART", "USD"))  # a bars file's
        assert upco.contract.conId > 1_000_000_000
        (tmp_path / "LATECO.csv").write_text((tmp_path / "UPCO.csv").read_text())
        assert len(ib.reqContractDetails(ibapi.Stock("LATECO", "SMART", "USD"))) == 1
        gateway.list_symbol("NEWCO")  # a listing made on purpose
        assert len(ib.reqContractDetails(ibapi.Stock("NEWCO", "SMART", "USD"))) == 1
    finally:
        ib.disconnect()
        gateway.stop()


def test_matching_symbols_come_from_the_finite_universe_as_ib_answers_them(tmp_path):
    """reqMatchingSymbols (IB's as-you-type search): symbols starting with the letters, the
    bars files' and listed ones too, then names containing them; a typo finds nothing."""
    (tmp_path / "UPCO.csv").write_text("date,open,high,low,close,volume\n"
                                       "2024-06-13,10,11,9,10.5,1000\n")  # fmt: skip
    gateway = start_gateway(seed=7, bars_dir=tmp_path)
    ib = connect(gateway)
    try:

        def found(pattern):
            return [(d.contract.symbol, d.contract.conId, d.contract.primaryExchange,
                     d.contract.currency, d.contract.description)
                    for d in ib.reqMatchingSymbols(pattern) or []]  # fmt: skip

        assert found("aap") == [("AAPL", 265598, "NASDAQ", "USD", "APPLE INC")]
        assert [row[0] for row in found("MICRO")] == ["AMD", "MSFT"]  # by their names
        [(symbol, conid, *_)] = found("UPC")
        assert symbol == "UPCO" and conid > 1_000_000_000  # a bars file's symbol
        gateway.list_symbol("NEWCO")
        assert [row[0] for row in found("NEWC")] == ["NEWCO"]
        assert [row[0] for row in found("APPL")] == ["AAPL"]  # the typo finds APPLE INC
        assert found("ZZZZQ") == []
        [sample] = ib.reqMatchingSymbols("MSFT")
        assert sample.contract.secType == "STK" and "OPT" in sample.derivativeSecTypes
    finally:
        ib.disconnect()
        gateway.stop()


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
