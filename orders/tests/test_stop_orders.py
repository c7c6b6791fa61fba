"""Manual stop, stop-limit and trailing-stop orders through the API, over the real socket to
the loopback gateway: what a trader sends, what IB works, and the refusals that name a field
and send nothing to IB."""

from decimal import Decimal

import pytest
from django.urls import reverse

from marketdata.services import code_resolve
from orders.models import Order, OrderStatus, Position, Trade
from tradingsite.testing.api import APITestCase, assert_refused

D = Decimal
ORDERS = reverse("api:order-list")


@pytest.fixture
def aapl(gateway):
    code = code_resolve(symbol="AAPL")
    gateway.set_price("AAPL", 200)
    return code


def order(code, **fields):
    return {"code_id": code.pk, "side": "SELL", "quantity": "10", "tif": "GTC", **fields}


def placed(staff_client, body):
    response = staff_client.post(ORDERS, body, format="json")
    assert response.status_code == 201, response.content
    return Order.objects.get(pk=response.json()["id"])


def at_ib_status(gateway, row):
    return next(o.status for o in gateway.orders() if o.order_id == row.ibkr_order_id)


class TestStopOrders(APITestCase):
    def test_a_stop_protects_a_long_and_closes_it_when_the_price_falls(
        self, staff_client, gateway, aapl, wait_for
    ):
        bought = placed(staff_client, order(aapl, side="BUY", order_type="MKT"))
        assert wait_for(lambda: Order.objects.get(pk=bought.pk).status == OrderStatus.FILLED)
        stop = placed(staff_client, order(aapl, order_type="STP", stop_price="195.00"))
        body = staff_client.get(reverse("api:order-detail", args=[stop.pk])).json()
        assert (body["order_type"], D(body["stop_price"]), body["price"]) == ("STP", 195, None)
        assert body["status"] == "submitted" and body["ibkr_order_id"] is not None
        [working] = [o for o in gateway.orders() if o.order_id == stop.ibkr_order_id]
        assert (working.order_type, working.aux_price, working.status) == (
            "STP",
            195,
            "PreSubmitted",
        )

        gateway.set_price("AAPL", D("194.50"))
        assert wait_for(lambda: Order.objects.get(pk=stop.pk).status == OrderStatus.FILLED)
        trade = Trade.objects.get(order=bought)
        assert (trade.exit_price, trade.exit_quantity, trade.realized_pnl) == (
            D("194.50"), 10, D("-55.00")
        )  # fmt: skip
        assert not Position.objects.filter(closed_at__isnull=True).exists()

    def test_a_stop_limit_and_a_trailing_stop_go_to_ib_with_their_prices(
        self, staff_client, gateway, aapl, wait_for
    ):
        stop_limit = placed(
            staff_client,
            order(
                aapl, side="BUY", order_type="STP LMT", stop_price="205", price="206", quantity="2"
            ),
        )
        msft = code_resolve(symbol="MSFT")  # one working manual order per contract
        gateway.set_price("MSFT", 200)
        trailing = placed(
            staff_client, order(msft, order_type="TRAIL", trailing_percent="2.5", quantity="3")
        )
        at_ib = {o.order_id: o for o in gateway.orders()}
        limit_at_ib = at_ib[stop_limit.ibkr_order_id]
        assert (limit_at_ib.order_type, limit_at_ib.aux_price, limit_at_ib.lmt_price) == (
            "STP LMT", 205, 206
        )  # fmt: skip
        trail_at_ib = at_ib[trailing.ibkr_order_id]
        assert (trail_at_ib.trailing_percent, trail_at_ib.trail_stop_price) == (D("2.5"), 195)
        assert Order.objects.get(pk=trailing.pk).trailing_percent == D("2.5")

        gateway.set_price("MSFT", 210)  # the trailing stop follows the price up
        gateway.set_price("AAPL", 210)  # the buy stop limit triggers, above its limit: it waits
        assert wait_for(lambda: at_ib_status(gateway, stop_limit) == "Submitted")
        assert Order.objects.get(pk=stop_limit.pk).filled_quantity == 0
        gateway.set_price("AAPL", D("205.80"))
        assert wait_for(lambda: Order.objects.get(pk=stop_limit.pk).status == OrderStatus.FILLED)
        assert Order.objects.get(pk=stop_limit.pk).avg_fill_price == D("205.80")
        # the trailing stop followed the price up to 210 (stop 204.75) and triggers under it
        gateway.set_price("MSFT", D("204.80"))
        assert at_ib_status(gateway, trailing) == "PreSubmitted"
        gateway.set_price("MSFT", D("204.70"))
        assert wait_for(lambda: Order.objects.get(pk=trailing.pk).status == OrderStatus.FILLED)
        assert Order.objects.get(pk=trailing.pk).avg_fill_price == D("204.70")

    @pytest.mark.parametrize(
        ("fields", "field", "reason"),
        [
            ({"order_type": "STP"}, "stop_price", "Required for a STP order."),
            ({"order_type": "STP LMT", "stop_price": "195"}, "price", "Required for a STP LMT"),
            (
                {"order_type": "STP", "stop_price": "195.005"},
                "stop_price",
                "not a multiple of 0.01",
            ),
            ({"order_type": "STP", "stop_price": "201"}, "stop_price", "201 is at or above AAPL"),
            ({"order_type": "STP", "side": "BUY", "stop_price": "199"}, "stop_price", "below AAPL"),
            ({"order_type": "STP", "stop_price": "200"}, "stop_price", "wrong side"),
            ({"order_type": "TRAIL", "trailing_percent": "0"}, "trailing_percent", "between 0"),
            ({"order_type": "TRAIL", "trailing_percent": "150"}, "trailing_percent", "150 is not"),
            ({"order_type": "TRAIL"}, "trailing_amount", "one of them"),
            ({"order_type": "TRAIL", "trailing_amount": "0"}, "trailing_amount", "not > 0"),
            ({"order_type": "LMT"}, "price", "Required for a LMT order."),
        ],
    )
    def test_a_bad_stop_is_a_400_naming_the_field_and_nothing_reaches_ib(
        self, staff_client, gateway, aapl, fields, field, reason
    ):
        response = staff_client.post(ORDERS, order(aapl, **fields), format="json")
        assert_refused(response, 400, field)
        message = response.json()["errors"][field][0]
        assert reason in message or reason in response.json()["detail"], message
        assert not Order.objects.exists()
        assert gateway.orders() == []
