"""Orders, trades and positions in the admin: read-only, linked, and always naming the mode."""

import pytest

from marketdata.tests.factories import CodeFactory
from orders.models import Order, Position, Trade
from orders.services import order_fill_record
from orders.tests.factories import OrderFactory
from tradingsite.testing.factories import make_decision, make_fill

pytestmark = pytest.mark.django_db

PAPER = "Paper trading: these orders go to the IB paper account, no real money."
LIVE = "LIVE trading: these orders are real and go to the live IB account."


@pytest.fixture
def filled(db):
    decision = make_decision(code=CodeFactory(symbol="AAPL"))
    return make_fill(decision=decision, instrument=decision.code)


@pytest.mark.parametrize("screen", ["order", "trade", "position"])
def test_every_order_screen_names_the_trading_mode(admin_client, filled, settings, screen):
    row = {"order": filled, "trade": Trade.objects.get(order=filled),
           "position": Position.objects.get(instrument=filled.instrument)}[screen]  # fmt: skip
    for url in (f"/admin/orders/{screen}/", f"/admin/orders/{screen}/{row.pk}/change/"):
        page = admin_client.get(url, secure=True).content.decode()
        assert PAPER in page and "(paper trading)" in page
    settings.TRADING_MODE = "live"
    page = admin_client.get(f"/admin/orders/{screen}/", secure=True).content.decode()
    assert LIVE in page and "(live trading)" in page


def test_orders_link_to_their_decision_code_and_trades(admin_client, filled):
    page = admin_client.get("/admin/orders/order/", secure=True).content.decode()
    assert f'href="/admin/strategies/decision/{filled.decision_id}/change/">decision #' in page
    assert f'href="/admin/marketdata/code/{filled.instrument.pk}/change/">AAPL (' in page
    trades = f"/admin/orders/trade/?order__id__exact={filled.pk}"
    assert f'href="{trades}">1 trades</a>' in page
    listing = admin_client.get(trades, secure=True).content.decode()
    assert f'href="/admin/orders/order/{filled.pk}/change/">order #{filled.pk}</a>' in listing
    assert "1 trade" in listing


def test_a_position_links_to_its_code_and_trades(admin_client, filled):
    position = Position.objects.get(instrument=filled.instrument)
    page = admin_client.get(f"/admin/orders/position/{position.pk}/change/", secure=True)
    html = page.content.decode()
    assert f'href="/admin/marketdata/code/{filled.instrument.pk}/change/">AAPL' in html
    assert f"/admin/orders/trade/?instrument__exact={filled.instrument_id}" in html
    assert '<div class="readonly">long</div>' in html


def test_a_trade_shows_each_exit_with_the_pnl_it_realized(admin_client, filled):
    sell = OrderFactory(instrument=filled.instrument, side="SELL", quantity=filled.quantity)
    order_fill_record(order=sell, quantity=filled.quantity, price=filled.avg_fill_price + 2)
    trade = Trade.objects.get(order=filled)
    page = admin_client.get(f"/admin/orders/trade/{trade.pk}/change/", secure=True)
    html = page.content.decode()
    assert "Trade exits" in html
    exits = " ".join(html[html.index('<th class="column-realized_pnl">') :].split())
    assert f'<td class="field-realized_pnl"> <p>{trade.realized_pnl}</p> </td>' in exits


def test_broker_rows_cannot_be_added_changed_or_deleted(admin_client, filled):
    assert admin_client.get("/admin/orders/order/add/", secure=True).status_code == 403
    page = admin_client.get(f"/admin/orders/order/{filled.pk}/change/", secure=True)
    assert 'name="_save"' not in page.content.decode()
    response = admin_client.post(f"/admin/orders/order/{filled.pk}/change/", {"status": "x"},
                                 secure=True)  # fmt: skip
    assert response.status_code == 403
    assert admin_client.post(f"/admin/orders/order/{filled.pk}/delete/", {"post": "yes"},
                             secure=True).status_code == 403  # fmt: skip


def test_an_order_whose_contract_is_not_a_stored_code_is_still_listed(admin_client):
    # The broker may report a contract before it is stored (no FK on conid).
    order = Order.objects.create(instrument_id=424242, side="BUY", quantity=1, price=10)
    page = admin_client.get("/admin/orders/order/", secure=True).content.decode()
    assert f"conid {order.instrument_id} (no code stored)" in page


def test_orders_are_searched_by_symbol_or_ib_order_id(admin_client):
    OrderFactory(instrument=CodeFactory(symbol="NVDA"), ibkr_order_id=4242)
    OrderFactory(instrument=CodeFactory(symbol="TSLA"), ibkr_order_id=77)
    by_symbol = admin_client.get("/admin/orders/order/?q=nv", secure=True).content.decode()
    assert ">NVDA (" in by_symbol and ">TSLA (" not in by_symbol
    by_id = admin_client.get("/admin/orders/order/?q=77", secure=True).content.decode()
    assert ">TSLA (" in by_id and ">NVDA (" not in by_id


def test_positions_filter_open_and_closed(admin_client):
    order = make_fill(instrument=CodeFactory(symbol="OPEN"))
    closing = OrderFactory(instrument=CodeFactory(symbol="SHUT"), side="BUY")
    order_fill_record(order=closing, quantity="10", price="100")
    exit_order = OrderFactory(instrument=closing.instrument, side="SELL")
    order_fill_record(order=exit_order, quantity="10", price="110")
    opened = admin_client.get("/admin/orders/position/?state=open", secure=True).content.decode()
    assert ">OPEN (" in opened and ">SHUT (" not in opened
    closed = admin_client.get("/admin/orders/position/?state=closed", secure=True)
    assert ">SHUT (" in closed.content.decode()
    assert order.instrument_id
