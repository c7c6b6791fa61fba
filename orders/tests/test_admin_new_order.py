"""The admin's "New order" form: the API's service and risk limits, from the screen."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from marketdata.models import Code
from marketdata.services import code_resolve
from marketdata.tests.factories import CodeFactory
from orders.models import Order, OrderStatus, Position
from tradingsite.broker import reset_broker
from tradingsite.testing.factories import make_fill

pytestmark = pytest.mark.django_db

D = Decimal
URL = "/admin/orders/order/new/"


def post(client, **fields):
    return client.post(URL, fields, secure=True)


def limit_below_market(gateway, symbol, share="0.95"):
    return (D(str(gateway.price(symbol))) * D(share)).quantize(D("0.01"))


def test_the_order_list_offers_a_new_order_and_the_form_searches_codes(admin_client):
    listing = admin_client.get("/admin/orders/order/", secure=True).content.decode()
    assert f'<a href="{URL}" class="addlink" id="new-order">New order</a>' in listing
    page = admin_client.get(URL, secure=True).content.decode()
    assert "Paper trading: these orders go to the IB paper account" in page
    # the symbol is a select2 autocomplete over the codes, searched as it is typed
    assert 'data-app-label="orders" data-model-name="order" data-field-name="instrument"' in page
    assert 'data-ajax--url="/admin/orders/order/symbols/"' in page  # codes, then IB's stocks
    assert 'value="Place order"' in page


def test_the_symbol_search_offers_stored_codes_then_the_stocks_ib_finds(
    admin_client, client, gateway, django_user_model
):
    msft = code_resolve(symbol="MSFT")

    def search(term, as_=admin_client):
        return as_.get("/admin/orders/order/symbols/", {"term": term}, secure=True)

    assert search("ms").json() == {
        "results": [
            {"id": str(msft.conid), "text": "MSFT (SMART, 272093)"},
            {"id": "ib:MS", "text": "MS (at IB: MORGAN STANLEY, not a stored code yet)"},
            {"id": "ib:CSCO", "text": "CSCO (at IB: CISCO SYSTEMS INC, not a stored code yet)"},
            {
                "id": "ib:META",
                "text": "META (at IB: META PLATFORMS INC-CLASS A, not a stored code yet)",
            },
        ],
        "pagination": {"more": False},
    }  # IB's symbols starting with the letters, then the names containing them
    with CaptureQueriesContext(connection) as one:
        search("ms")
    for n in range(19):
        CodeFactory(symbol=f"MSX{n}")
    with CaptureQueriesContext(connection) as twenty:
        assert len(search("ms").json()["results"]) == 20  # codes first, up to 20 in all
    assert len(twenty) == len(one)  # the queries do not grow with the codes found
    assert [r["id"] for r in search("NVIDIA").json()["results"]] == ["ib:NVDA"]
    assert search("ZZZZQ").json()["results"] == []  # IB knows no such stock
    assert search("ms", as_=client).status_code == 302  # staff only: to the login page
    clerk = django_user_model.objects.create_user("clerk", password="x", is_staff=True)
    client.force_login(clerk)
    assert search("ms", as_=client).status_code == 403  # who may not place orders


def test_without_ib_the_symbol_search_offers_the_stored_codes_and_says_why(admin_client, settings):
    settings.IBKR_HOST, settings.IBKR_PORT, settings.IBKR_CONNECT_ATTEMPTS = "127.0.0.1", 9, 1
    reset_broker()
    try:
        msft = CodeFactory(symbol="MSFT", conid=272093)
        found = admin_client.get("/admin/orders/order/symbols/", {"term": "ms"}, secure=True)
    finally:
        reset_broker()
    stored, said = found.json()["results"]
    assert stored == {"id": str(msft.conid), "text": str(msft)}
    assert said["disabled"] is True and said["id"] == ""
    assert said["text"].startswith("IB was not searched: ") and "127.0.0.1:9" in said["text"]


def test_an_order_for_a_stock_ib_found_stores_its_code_as_it_is_placed(admin_client, gateway):
    limit = limit_below_market(gateway, "NVDA")
    response = post(admin_client, code="ib:NVDA", side="BUY", quantity="2", order_type="LMT",
                    price=str(limit), tif="GTC")  # fmt: skip
    assert response.status_code == 302, response.content.decode()[-3000:]
    order = Order.objects.get()
    nvda = Code.objects.get(symbol="NVDA")
    assert (nvda.conid, order.instrument_id, order.status) == (4815747, 4815747, "submitted")
    assert [(o.contract.symbol, o.quantity) for o in gateway.orders()] == [("NVDA", 2)]
    # A symbol IB does not confirm is refused at the field: no code, no order.
    response = post(admin_client, code="ib:APPL", side="BUY", quantity="1", order_type="LMT",
                    price="100", tif="DAY")  # fmt: skip
    assert response.status_code == 200
    [reason] = response.context["form"].errors["code"]
    assert "IB knows no STK APPL on SMART in USD" in reason
    assert "No security definition has been found" in reason
    assert not Code.objects.filter(symbol="APPL").exists() and Order.objects.count() == 1
    # shown again, the chosen stock is still chosen
    assert '<option value="ib:APPL" selected>APPL (at IB: not a stored code yet)' in (
        response.content.decode()
    )


def test_a_limit_order_placed_from_the_admin_goes_to_ib(admin_client, gateway):
    aapl = code_resolve(symbol="AAPL")
    limit = limit_below_market(gateway, "AAPL")
    response = post(admin_client, code=aapl.conid, side="BUY", quantity="3", order_type="LMT",
                    price=str(limit), tif="DAY")  # fmt: skip
    order = Order.objects.get()
    assert response.status_code == 302 and response["Location"] == (
        f"/admin/orders/order/{order.pk}/change/"
    )
    assert (order.side, order.quantity, order.price, order.decision_id) == ("BUY", 3, limit, None)
    assert order.status == OrderStatus.SUBMITTED and order.ibkr_order_id is not None
    assert [(o.action, o.quantity, o.lmt_price) for o in gateway.orders()] == [("BUY", 3, limit)]
    page = admin_client.get(response["Location"], secure=True).content.decode()
    assert f"Order #{order.pk} placed: BUY 3 AAPL LMT @ {limit:.2f} DAY (submitted)." in page


def test_the_risk_limits_of_the_api_refuse_on_the_form_and_nothing_is_placed(admin_client, gateway):
    aapl = code_resolve(symbol="AAPL")
    limit = limit_below_market(gateway, "AAPL")
    page = post(admin_client, code=aapl.conid, side="BUY", quantity="100000", order_type="LMT",
                price=str(limit), tif="DAY").content.decode()  # fmt: skip
    assert "The position would cost" in page and "over 10 % of the account" in page
    page = post(admin_client, code=aapl.conid, side="BUY", quantity="1", order_type="LMT",
                price="100.123", tif="DAY").content.decode()  # fmt: skip
    assert "100.123 is not a multiple of 0.01, IB&#x27;s price step for AAPL" in page
    page = post(admin_client, code=aapl.conid, side="BUY", quantity="1", order_type="LMT",
                tif="DAY").content.decode()  # fmt: skip
    assert "Required for a LMT order." in page  # the service's words, as the API's
    assert not Order.objects.exists() and not gateway.orders()


def test_in_live_mode_the_order_is_repeated_and_goes_only_once_confirmed(
    admin_client, gateway, settings
):
    settings.TRADING_MODE = "live"
    aapl = code_resolve(symbol="AAPL")
    limit = limit_below_market(gateway, "AAPL")
    fields = {"code": aapl.conid, "side": "SELL", "quantity": "2", "order_type": "LMT",
              "price": str(limit), "tif": "GTC"}  # fmt: skip
    page = admin_client.get(URL, secure=True).content.decode()
    assert "LIVE trading: these orders are real" in page
    page = post(admin_client, **fields).content.decode()
    assert "Send this order to the <strong>live</strong> IB account" in page
    assert f'<p class="order-in-words" id="order-in-words">SELL 2 AAPL LMT @ {limit:.2f} GTC' in (
        page
    )
    assert not Order.objects.exists() and not gateway.orders()  # nothing sent yet
    # Confirmed, it reaches the service, which refuses a live order to a paper gateway.
    page = post(admin_client, **fields, confirmed="on").content.decode()
    assert "TRADING_MODE is live but the gateway is logged in to a paper account." in page
    assert not gateway.orders()


def test_in_live_mode_an_order_the_service_refuses_never_reaches_the_confirmation(
    admin_client, gateway, settings
):
    settings.TRADING_MODE = "live"
    aapl = code_resolve(symbol="AAPL")
    fields = {"code": aapl.conid, "side": "BUY", "order_type": "LMT", "tif": "DAY"}
    page = post(admin_client, **fields, quantity="2").content.decode()
    assert "Required for a LMT order." in page
    assert "Send this order to the <strong>live</strong> IB account" not in page
    page = post(admin_client, **fields, quantity="0.5", price="100").content.decode()
    assert "0.5 is not a whole number: AAPL (STK) trades in whole shares." in page
    assert "Send this order to the <strong>live</strong> IB account" not in page
    assert not Order.objects.exists() and not gateway.orders()


def test_placing_needs_the_permission_to_add_orders(client, django_user_model):
    clerk = django_user_model.objects.create_user("clerk", password="x", is_staff=True)
    client.force_login(clerk)
    assert client.get(URL, secure=True).status_code == 403


@pytest.mark.parametrize(
    "fields",
    [
        {"code": "\x00", "side": "BUY", "quantity": "1", "order_type": "LMT", "price": "1"},
        {"code": "abc", "side": "HOLD", "quantity": "1e400", "order_type": "STP", "tif": "x"},
        {"code": "1", "side": "BUY", "quantity": "0", "order_type": "MKT", "tif": "DAY"},
        {"code": "1", "side": "BUY", "quantity": "-3", "order_type": "LMT", "price": "1e30"},
        {"code": "1", "side": "BUY", "quantity": "NaN", "order_type": "LMT", "price": "Infinity"},
    ],
)
def test_hostile_input_is_refused_on_the_form_and_nothing_is_placed(admin_client, fields):
    response = admin_client.post(URL, fields, secure=True)
    assert response.status_code == 200
    assert response.context["form"].errors
    assert not Order.objects.exists()


def test_an_open_position_offers_the_order_that_closes_it(admin_client, gateway):
    aapl = code_resolve(symbol="AAPL")
    make_fill(instrument=aapl, quantity="7", price="100")
    position = Position.objects.get(instrument=aapl)
    page = admin_client.get(f"/admin/orders/position/{position.pk}/change/", secure=True)
    closing = f"{URL}?code={aapl.conid}&amp;side=SELL&amp;quantity=7&amp;order_type=MKT&amp;tif=DAY"
    assert f'<a href="{closing}">New order: SELL 7 at the market</a>' in page.content.decode()
    form = admin_client.get(closing.replace("&amp;", "&"), secure=True).content.decode()
    assert f'<option value="{aapl.conid}" selected>AAPL' in form
    assert 'value="SELL" required id="id_side_1" checked' in form
    assert 'name="quantity" value="7"' in form
