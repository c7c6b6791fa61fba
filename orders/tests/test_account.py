"""The account's own money: IB's account summary in the API, and in the risk gate's sizing."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from ibgateway import server as gateway_server
from marketdata.services import code_resolve
from orders.models import Order
from orders.tests.test_api import closed_port
from strategies.risk import risk_check
from strategies.tests.factories import StrategyFactory
from tradingsite.broker import AccountSummary, reset_broker
from tradingsite.testing.api import APITestCase, assert_refused
from tradingsite.testing.factories import make_decision

D = Decimal
URL = reverse("api:account")


class TestAccount(APITestCase):
    def test_the_account_is_ibs_account_summary(self, staff_client, gateway):
        body = staff_client.get(URL).json()
        assert {k: body[k] for k in ("account", "currency", "net_liquidation", "cash",
                                     "buying_power", "available_funds", "trading_mode")} == {
            "account": "DU0000001", "currency": "USD", "net_liquidation": "1000000.00",
            "cash": "1000000.00", "buying_power": "4000000.00", "available_funds": "1000000.00",
            "trading_mode": "paper",
        }  # fmt: skip
        assert body["time"]

    def test_the_account_follows_a_fill(self, staff_client, gateway, wait_for):
        aapl = code_resolve(symbol="AAPL")
        gateway.set_price("AAPL", "200.00")
        response = staff_client.post(
            reverse("api:order-list"),
            {"code_id": aapl.pk, "side": "BUY", "quantity": "10", "order_type": "MKT"},
            format="json",
        )
        assert response.status_code == 201, response.content
        cash = D("1000000") - D("2000") - D("1.00")  # 10 x 200.00 and IB's minimum commission
        assert wait_for(lambda: D(staff_client.get(URL).json()["cash"]) == cash)

    def test_only_staff_see_the_account(self, reader_client, anonymous):
        assert_refused(anonymous.get(URL), 401)
        assert_refused(reader_client.get(URL), 403)

    def test_an_unreachable_gateway_is_a_503(self, staff_client, settings):
        settings.IBKR_HOST, settings.IBKR_PORT = "127.0.0.1", closed_port()
        settings.IBKR_CONNECT_ATTEMPTS = 1
        reset_broker()
        response = staff_client.get(URL)
        assert response.status_code == 503
        assert f"127.0.0.1:{settings.IBKR_PORT}" in response.json()["detail"]

    def test_an_empty_account_summary_is_a_clear_502(self, staff_client, gateway, monkeypatch):
        monkeypatch.setattr(gateway_server, "ACCOUNT_SUMMARY_TAGS", ("AccountType",))
        response = staff_client.get(URL)
        assert response.status_code == 502
        assert response.json()["detail"] == (
            "IB's account summary has no NetLiquidation, TotalCashValue, BuyingPower, "
            "AvailableFunds for account DU0000001."
        )

    def test_a_manual_order_must_fit_the_accounts_funds(self, staff_client, gateway):
        aapl = code_resolve(symbol="AAPL")
        gateway.server.book.cash = D("3000")  # a small account: 3,000 of cash
        data = {"code_id": aapl.pk, "side": "BUY", "quantity": "20", "order_type": "LMT",
                "price": "200.00"}  # fmt: skip
        response = staff_client.post(reverse("api:order-list"), data, format="json")
        assert_refused(response, 400, "quantity")
        assert response.json()["errors"]["quantity"] == [
            "The position would cost 4000.00, over 10 % of the account (300.00; its net "
            "liquidation is 3000.00)."
        ]
        assert not Order.objects.exists()


def summary(net_liquidation, available_funds):
    return AccountSummary(
        account="DU0000001", currency="USD", net_liquidation=D(net_liquidation),
        cash=D(available_funds), buying_power=D(available_funds) * 4,
        available_funds=D(available_funds), time=datetime(2025, 3, 14, tzinfo=UTC),
    )  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("account", "quantity", "detail"),
    [
        (None, 100, "floor(100000 x 0.01 / 10) = 100, cap 10% of equity = 100: 100"),
        (summary("1000000", "1000000"), 100,
         "cap 10% of equity = 100, available funds 1000000 pay for 10000: 100"),
        (summary("50000", "50000"), 50, "floor(50000 x 0.01 / 10) = 50, cap 10% of equity = 50"),
        (summary("1000000", "2500"), 25, "available funds 2500 pay for 25: 25"),
        (summary("1000000", "50"), None, "available funds 50 pay for 0: 0"),
    ],
)  # fmt: skip
def test_sizing_never_exceeds_what_the_account_holds(account, quantity, detail):
    decision = make_decision(current_price="100", target_price="130", stop_loss="90")
    asked = []

    def account_of():
        asked.append(True)
        return account

    outcome = risk_check(
        decision=decision, strategy=StrategyFactory(), params={"account_size": "100000"},
        account=account_of,
    )  # fmt: skip
    assert outcome.quantity == quantity
    assert asked == [True]
    [(_, passed, said)] = [check for check in outcome.checks if check[0] == "quantity"]
    assert passed is (quantity is not None) and detail in said


@pytest.mark.django_db
def test_a_hold_never_asks_ib_for_the_account():
    decision = make_decision(type="hold", target_price=None, stop_loss=None)
    risk_check(decision=decision, strategy=StrategyFactory(), params={},
               account=lambda: pytest.fail("asked IB"))  # fmt: skip
