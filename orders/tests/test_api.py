import socket
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from marketdata.services import code_resolve
from marketdata.tests.factories import CodeFactory
from orders.api.filters import OrderFilter, PositionFilter, TradeFilter
from orders.models import Order, OrderStatus, Position, Trade
from orders.tests.factories import OrderFactory
from tradingsite.broker import reset_broker
from tradingsite.testing.api import APIViewTestCases, assert_refused, ids, results
from tradingsite.testing.factories import make_decision, make_fill

ORDER_FIELDS = {
    "id", "decision_id", "strategy_id", "ibkr_order_id", "conid", "symbol", "side", "quantity",
    "price", "order_type", "tif", "status", "filled_quantity", "avg_fill_price", "error_message",
    "created_at", "submitted_at", "filled_at", "canceled_at", "updated_at", "trading_mode",
    "parent_order_id", "role", "oca_group", "stop_price", "trailing_amount", "trailing_percent",
}  # fmt: skip
TRADE_FIELDS = {
    "id", "order_id", "strategy_id", "status", "conid", "symbol", "entry_price", "entry_quantity",
    "entry_date", "exit_price", "exit_quantity", "exit_date", "realized_pnl", "fees", "net_pnl",
    "created_at", "updated_at", "trading_mode",
}  # fmt: skip
POSITION_FIELDS = {
    "id", "conid", "symbol", "quantity", "average_cost", "current_price", "unrealized_pnl",
    "updated_at", "closed_at", "trading_mode",
}  # fmt: skip


def cancel_url(order):
    return reverse("api:order-cancel", kwargs={"pk": getattr(order, "pk", order)})


def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class TestOrders(
    APIViewTestCases.GetObject,
    APIViewTestCases.ListObjects,
    APIViewTestCases.Filters,
):
    basename = "order"
    model = Order
    expected_fields = ORDER_FIELDS
    list_queries = 1
    filterset = OrderFilter
    filter_ignore = {
        "quantity", "price", "filled_quantity", "avg_fill_price", "stop_price",
        "trailing_amount", "trailing_percent",
    }  # fmt: skip

    def make(self):
        return OrderFactory(decision=make_decision())

    def manual_order(self, code, **changes):
        return {"code_id": code.pk, "side": "BUY", "quantity": "5", "order_type": "LMT",
                "price": "100", "tif": "DAY", **changes}  # fmt: skip

    def test_an_order_carries_its_decision_strategy_and_trading_mode(self, reader_client):
        order = self.make()
        body = reader_client.get(self.detail_url(order)).json()
        assert body["decision_id"] == order.decision_id
        assert body["strategy_id"] == order.decision.strategy_id
        assert (body["conid"], body["symbol"]) == (order.instrument.conid, order.instrument.symbol)
        assert body["trading_mode"] == "paper"

    def test_trading_mode_live_is_shown(self, reader_client, settings):
        settings.TRADING_MODE = "live"
        order = self.make()
        assert reader_client.get(self.detail_url(order)).json()["trading_mode"] == "live"
        assert results(reader_client.get(self.list_url()))[0]["trading_mode"] == "live"

    def test_orders_cannot_be_edited_or_deleted(self, staff_client):
        order = self.make()
        for method in (staff_client.put, staff_client.patch, staff_client.delete):
            assert method(self.detail_url(order), {}, format="json").status_code == 405

    def test_a_fraction_of_a_share_is_a_400_naming_quantity(self, staff_client):
        code = CodeFactory(symbol="AAPL")
        response = staff_client.post(
            self.list_url(), self.manual_order(code, quantity="0.5"), format="json"
        )
        assert_refused(response, 400, "quantity")
        assert response.json()["errors"]["quantity"] == [
            "0.5 is not a whole number: AAPL (STK) trades in whole shares."
        ]
        assert not Order.objects.exists()

    def test_a_manual_order_is_refused_to_anonymous_and_readers(self, anonymous, reader_client):
        data = self.manual_order(CodeFactory())
        assert_refused(anonymous.post(self.list_url(), data, format="json"), 401)
        assert_refused(reader_client.post(self.list_url(), data, format="json"), 403)
        assert not Order.objects.exists()

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"side": "HOLD"}, "side"),
            ({"quantity": "abc"}, "quantity"),
            ({"quantity": "NaN"}, "quantity"),
            ({"quantity": "0"}, "quantity"),
            ({"quantity": "-3"}, "quantity"),
            ({"quantity": "1.00001"}, "quantity"),
            ({"order_type": "MOC"}, "order_type"),
            ({"price": None}, "price"),
            ({"price": "0"}, "price"),
            ({"order_type": "LMT", "price": "1e30"}, "price"),
            ({"tif": "IOC"}, "tif"),
            ({"code_id": 2_000_000_000}, "code_id"),
            ({"code_id": None}, "code_id"),
        ],
    )
    def test_a_bad_manual_order_is_a_400_naming_the_field(self, staff_client, changes, field):
        response = staff_client.post(
            self.list_url(), self.manual_order(CodeFactory(), **changes), format="json"
        )
        assert_refused(response, 400, field)
        assert not Order.objects.exists()

    def test_a_broker_that_cannot_be_reached_is_a_503_naming_it(self, staff_client, settings):
        settings.IBKR_HOST, settings.IBKR_PORT = "127.0.0.1", closed_port()
        settings.IBKR_CONNECT_ATTEMPTS = 1
        reset_broker()
        response = staff_client.post(
            self.list_url(), self.manual_order(CodeFactory()), format="json"
        )
        assert response.status_code == 503, response.content
        body = response.json()
        assert body["broker"] == {"host": "127.0.0.1", "port": settings.IBKR_PORT}
        assert f"127.0.0.1:{settings.IBKR_PORT}" in body["detail"]
        assert not Order.objects.exists()

    def test_a_market_order_is_checked_at_ibs_price_now(self, staff_client, gateway):
        code = code_resolve(symbol="AAPL")
        gateway.set_price("AAPL", "250.00")
        data = self.manual_order(code, order_type="MKT", quantity="41", price=None)
        response = staff_client.post(self.list_url(), data, format="json")
        assert_refused(response, 400, "quantity")  # 41 x 250.00 is over 10 % of 100,000
        assert response.json()["errors"]["quantity"] == [
            "The position would cost 10250.00, over 10 % of the account (10000.00)."
        ]
        assert not Order.objects.exists()
        response = staff_client.post(self.list_url(), {**data, "quantity": "40"}, format="json")
        assert response.status_code == 201, response.content

    @pytest.mark.parametrize("gateway", [{"bars": {"AAPL": "up"}}], indirect=True)
    def test_a_market_order_ib_gives_no_price_for_is_refused(self, staff_client, gateway):
        code = code_resolve(symbol="AAPL")
        gateway.server.market._live["AAPL"] = Decimal("-1")  # a gateway answering nonsense
        data = self.manual_order(code, order_type="MKT", price=None)
        response = staff_client.post(self.list_url(), data, format="json")
        assert_refused(response, 400, "price")
        assert response.json()["errors"]["price"][0].startswith(
            "IB gave no usable price for AAPL (last -1.0"
        )
        assert not Order.objects.exists()

    def test_a_manual_order_goes_to_the_broker_and_fills(self, staff_client, gateway, wait_for):
        code = code_resolve(symbol="AAPL")
        above = (Decimal(str(gateway.price("AAPL"))) * Decimal("1.05")).quantize(Decimal("1"))
        data = self.manual_order(code, price=str(above))  # a buy limit above the market fills
        response = staff_client.post(self.list_url(), data, format="json")
        assert response.status_code == 201, response.content
        placed = response.json()
        assert placed["ibkr_order_id"] is not None
        assert (placed["decision_id"], placed["strategy_id"]) == (None, None)
        assert (placed["conid"], placed["symbol"], placed["side"]) == (code.conid, "AAPL", "BUY")
        # IB acknowledged it before the answer (and may have filled it already, at once).
        assert (placed["status"] in ("submitted", "filled"), placed["trading_mode"]) == (
            True, "paper"
        )  # fmt: skip

        order = Order.objects.get(pk=placed["id"])
        assert wait_for(lambda: Order.objects.get(pk=order.pk).status == OrderStatus.FILLED)
        body = staff_client.get(self.detail_url(order)).json()
        assert (body["status"], Decimal(body["filled_quantity"])) == ("filled", 5)
        trades = results(staff_client.get(reverse("api:trade-list"), {"order_id": order.pk}))
        assert [Decimal(t["entry_quantity"]) for t in trades] == [5]
        positions = results(staff_client.get(reverse("api:position-list"), {"symbol": "aapl"}))
        assert [Decimal(p["quantity"]) for p in positions] == [5]

    def test_cancel_a_working_order(self, staff_client, reader_client, gateway, wait_for):
        code = code_resolve(symbol="MSFT")
        far_below = (Decimal(str(gateway.price("MSFT"))) * Decimal("0.5")).quantize(Decimal("1"))
        data = self.manual_order(code, order_type="LMT", price=str(far_below), tif="GTC")
        order_id = staff_client.post(self.list_url(), data, format="json").json()["id"]

        assert_refused(reader_client.post(cancel_url(order_id)), 403)
        response = staff_client.post(cancel_url(order_id))
        assert response.status_code == 200, response.content
        assert wait_for(lambda: Order.objects.get(pk=order_id).status == OrderStatus.CANCELLED)
        assert staff_client.get(self.detail_url(order_id)).json()["status"] == "cancelled"

        assert_refused(staff_client.post(cancel_url(order_id)), 400, "status")
        assert_refused(staff_client.post(cancel_url(2_000_000_000)), 404)

    def test_a_position_over_a_tenth_of_the_account_is_refused(self, staff_client):
        code = CodeFactory()
        response = staff_client.post(
            self.list_url(), self.manual_order(code, quantity="101", price="100"), format="json"
        )  # 10,100 of a 100,000 account
        assert_refused(response, 400, "quantity")
        assert "10 %" in response.json()["errors"]["quantity"][0]
        make_fill(quantity="60", price="100", instrument=code)  # 6,000 held: 4,000 left
        response = staff_client.post(
            self.list_url(), self.manual_order(code, quantity="41", price="100"), format="json"
        )
        assert_refused(response, 400, "quantity")
        assert Order.objects.count() == 1

    def test_reducing_a_position_is_never_capped(self, staff_client, gateway, wait_for):
        code = code_resolve(symbol="AAPL")
        make_fill(quantity="200", price="100", instrument=code)  # 20,000: over the cap
        below = (Decimal(str(gateway.price("AAPL"))) * Decimal("0.95")).quantize(Decimal("1"))
        data = self.manual_order(code, side="SELL", quantity="200", price=str(below))
        response = staff_client.post(self.list_url(), data, format="json")
        assert response.status_code == 201, response.content
        order_id = response.json()["id"]
        assert wait_for(lambda: Order.objects.get(pk=order_id).status == OrderStatus.FILLED)
        position = results(staff_client.get(reverse("api:position-list"), {"state": "closed"}))
        assert [p["conid"] for p in position] == [code.conid]

    def test_one_working_manual_order_per_contract(self, staff_client):
        code = CodeFactory()
        working = OrderFactory(instrument=code, status="submitted", ibkr_order_id=7)
        response = staff_client.post(self.list_url(), self.manual_order(code), format="json")
        assert_refused(response, 400, "code_id")
        assert f"order {working.pk}" in response.json()["errors"]["code_id"][0]

    def test_open_positions_and_daily_orders_are_limited(self, staff_client):
        for _ in range(10):
            make_fill(quantity="1", price="10")
        response = staff_client.post(self.list_url(), self.manual_order(CodeFactory()),
                                     format="json")  # fmt: skip
        assert_refused(response, 400, "code_id")
        assert "10 positions are open" in response.json()["errors"]["code_id"][0]
        Position.objects.update(closed_at=datetime(2025, 3, 1, tzinfo=UTC))
        response = staff_client.post(self.list_url(), self.manual_order(CodeFactory()),
                                     format="json")  # fmt: skip
        assert_refused(response, 400, "non_field_errors")  # the ten fills were manual orders
        assert "10 manual orders today" in response.json()["detail"]

    def test_an_order_the_broker_never_got_is_cancelled_at_once(self, staff_client, gateway):
        order = OrderFactory()  # no ibkr_order_id, and IB has no order of its orderRef
        response = staff_client.post(cancel_url(order))
        assert response.status_code == 200, response.content
        assert response.json()["status"] == "cancelled"

    def test_filters_by_status_symbol_strategy_and_created_range(self, reader_client):
        at = lambda day: datetime(2025, 3, day, 12, tzinfo=UTC)  # noqa: E731
        aapl = CodeFactory(symbol="AAPL")
        decision = make_decision(code=aapl)
        early = OrderFactory(instrument=aapl, decision=decision, created_at=at(1))
        filled = OrderFactory(instrument=aapl, status="filled", created_at=at(5))
        late = OrderFactory(status="cancelled", created_at=at(9))
        get = lambda **query: ids(reader_client.get(self.list_url(), query))  # noqa: E731
        assert get(symbol="aapl") == [filled.pk, early.pk]
        assert get(status="filled") == [filled.pk]
        assert get(status="cancelled", symbol="AAPL") == []
        assert get(strategy_id=decision.strategy_id) == [early.pk]
        assert get(decision_id=decision.pk) == [early.pk]
        assert get(created_after="2025-03-05T12:00:00Z") == [late.pk, filled.pk]
        assert get(created_after="2025-03-02T00:00:00Z", created_before="2025-03-06T00:00Z") == [
            filled.pk
        ]
        assert get(conid=aapl.conid) == [filled.pk, early.pk]


class TestTrades(APIViewTestCases.ReadOnlyViewSet):
    basename = "trade"
    model = Trade
    expected_fields = TRADE_FIELDS
    list_queries = 2
    filterset = TradeFilter
    filter_ignore = {
        "entry_price", "entry_quantity", "exit_price", "exit_quantity", "realized_pnl", "fees",
    }  # fmt: skip

    def make(self):
        return Trade.objects.get(order=make_fill())

    def test_a_closed_trade_shows_its_pnl(self, reader_client):
        bought = make_fill(quantity="10", price="100")
        code = bought.instrument
        make_fill(quantity="10", price="90", instrument=code, side="SELL")
        trade = Trade.objects.get(order=bought)
        body = reader_client.get(self.detail_url(trade)).json()
        assert Decimal(body["realized_pnl"]) == Decimal("-100")  # long: (90 - 100) * 10
        assert body["symbol"] == code.symbol and body["trading_mode"] == "paper"
        assert ids(reader_client.get(self.list_url(), {"conid": code.conid})) == [trade.pk]
        assert ids(reader_client.get(self.list_url(), {"order_id": bought.pk})) == [trade.pk]

    def test_a_trade_is_its_strategys_or_manual_and_open_or_closed(self, reader_client):
        decision = make_decision()
        by_strategy = make_fill(quantity="10", price="100", decision=decision,
                                instrument=decision.code)  # fmt: skip
        make_fill(quantity="4", price="101", instrument=decision.code, side="SELL")
        manual = make_fill(quantity="2", price="50")
        make_fill(quantity="2", price="55", instrument=manual.instrument, side="SELL")
        rows = {
            row["order_id"]: row for row in reader_client.get(self.list_url()).json()["results"]
        }
        assert (rows[by_strategy.pk]["strategy_id"], rows[by_strategy.pk]["status"]) == (
            decision.strategy_id, "open",  # 4 of 10 exited
        )  # fmt: skip
        assert (rows[manual.pk]["strategy_id"], rows[manual.pk]["status"]) == (None, "closed")

        def get(**query):
            return sorted(row["order_id"] for row in
                          reader_client.get(self.list_url(), query).json()["results"])  # fmt: skip

        assert get(strategy_id=decision.strategy_id) == [by_strategy.pk]
        assert get(manual="true") == [manual.pk] and get(status="closed") == [manual.pk]
        assert get(status="open") == [by_strategy.pk]
        refused = reader_client.get(self.list_url(), {"status": "finished"})
        assert refused.status_code == 400 and "status" in refused.json()["errors"]


class TestPositions(APIViewTestCases.ReadOnlyViewSet):
    basename = "position"
    model = Position
    expected_fields = POSITION_FIELDS
    list_queries = 2
    filterset = PositionFilter
    filter_ignore = {"quantity", "average_cost", "current_price", "unrealized_pnl"}

    def make(self):
        return Position.objects.get(instrument=make_fill().instrument)

    def test_open_positions_by_default_closed_or_all_on_request(self, reader_client):
        held = self.make()
        bought = make_fill(quantity="4", price="50")
        make_fill(quantity="4", price="55", instrument=bought.instrument, side="SELL")
        closed = Position.objects.get(instrument=bought.instrument)
        assert closed.closed_at is not None

        get = lambda **query: ids(reader_client.get(self.list_url(), query))  # noqa: E731
        assert get() == [held.pk]
        assert get(state="open") == [held.pk]
        assert get(state="closed") == [closed.pk]
        assert set(get(state="all")) == {held.pk, closed.pk}
        assert_refused(reader_client.get(self.list_url(), {"state": "shut"}), 400, "state")
        assert reader_client.get(self.detail_url(closed)).json()["closed_at"] is not None
        assert get(state="all", symbol=bought.instrument.symbol.lower()) == [closed.pk]
