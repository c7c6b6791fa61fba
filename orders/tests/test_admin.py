"""Orders, trades and positions in the admin: read-only, linked, and always naming the mode."""

import pytest

from marketdata.tests.factories import CodeFactory
from orders.models import Order, Position, Trade
from orders.services import order_fill_record
from orders.tests.factories import OrderFactory
from strategies.tests.factories import StrategyFactory
from tradingsite.testing.factories import ExecutionFactory, make_decision, make_fill

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
    code = f'href="/admin/marketdata/code/{filled.instrument.pk}/change/" class="truncate"'
    assert f'{code} title="AAPL ({filled.instrument_id})">AAPL (' in page
    # the decision and the trades are secondary columns: on the order's page, not in the list
    detail = admin_client.get(f"/admin/orders/order/{filled.pk}/change/", secure=True)
    detail = detail.content.decode()
    decision = f'href="/admin/strategies/decision/{filled.decision_id}/change/">decision #'
    assert decision in detail and decision not in page
    trades = f"/admin/orders/trade/?order__id__exact={filled.pk}"
    assert f'href="{trades}">1 trades</a>' in detail and trades not in page
    assert f'<td class="field-created"><a href="/admin/orders/order/{filled.pk}/change/">' in page
    listing = admin_client.get(trades, secure=True).content.decode()
    assert f'href="/admin/orders/order/{filled.pk}/change/">order #{filled.pk}</a>' in listing
    assert "1 trade" in listing


def test_a_position_links_to_its_code_and_trades(admin_client, filled):
    position = Position.objects.get(instrument=filled.instrument)
    page = admin_client.get(f"/admin/orders/position/{position.pk}/change/", secure=True)
    html = page.content.decode()
    assert f'href="/admin/marketdata/code/{filled.instrument.pk}/change/" class="truncate"' in html
    assert f"/admin/orders/trade/?instrument__exact={filled.instrument_id}" in html
    assert '<div class="readonly">long</div>' in html


def test_a_trade_shows_each_exit_with_the_pnl_it_realized(admin_client, filled):
    sell = OrderFactory(instrument=filled.instrument, side="SELL", quantity=filled.quantity)
    order_fill_record(order=sell, quantity=filled.quantity, price=filled.avg_fill_price + 2)
    trade = Trade.objects.get(order=filled)
    page = admin_client.get(f"/admin/orders/trade/{trade.pk}/change/", secure=True)
    html = page.content.decode()
    assert "Trade exits" in html
    exits = " ".join(html[html.index('<th class="column-realized_pnl_shown">') :].split())
    # 10 x 2 less the fees, signed and green, as money reads
    shown = f'<span class="pnl pnl-positive">+{trade.realized_pnl:,.2f}</span>'
    assert f'<td class="field-realized_pnl_shown"> <p>{shown}</p> </td>' in exits


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


def test_an_order_page_uses_the_traders_words_for_its_fields(admin_client, filled):
    Order.objects.filter(pk=filled.pk).update(ibkr_order_id=4242)
    page = admin_client.get(f"/admin/orders/order/{filled.pk}/change/", secure=True)
    html = page.content.decode()
    for label in ("IB order id:", "TIF:", "Average fill price:"):
        assert f"<label>{label}</label>" in html
    assert "Ibkr" not in html and "<label>Tif:" not in html and "Avg fill" not in html
    listing = admin_client.get("/admin/orders/order/", secure=True).content.decode()
    assert ">Average fill price</a>" in listing and "Avg fill" not in listing


def test_trade_and_position_pages_say_pnl_and_average_cost(admin_client, filled):
    trade = Trade.objects.get(order=filled)
    html = admin_client.get(f"/admin/orders/trade/{trade.pk}/change/", secure=True)
    html = html.content.decode()
    assert "<label>Realized P&amp;L:</label>" in html  # the trade's own field
    assert '<th class="column-realized_pnl_shown">Realized P&amp;L' in html  # each exit's
    position = Position.objects.get(instrument=filled.instrument)
    html = admin_client.get(f"/admin/orders/position/{position.pk}/change/", secure=True)
    html = html.content.decode()
    assert "<label>Unrealized P&amp;L:</label>" in html
    assert "<label>Average cost:</label>" in html
    listing = admin_client.get("/admin/orders/position/", secure=True).content.decode()
    assert ">Unrealized P&amp;L</a>" in listing and "pnl</a>" not in listing


def test_an_order_is_titled_with_its_symbol_and_plain_numbers(admin_client):
    order = OrderFactory(instrument=CodeFactory(symbol="SPY"), quantity="17",
                         price="559.05")  # fmt: skip
    title = f"Order #{order.pk}: BUY 17 SPY LMT @ 559.05 (submitted)"
    html = admin_client.get(f"/admin/orders/order/{order.pk}/change/", secure=True)
    html = html.content.decode()
    assert f"<h2>{title}</h2>" in html
    breadcrumbs = html[html.index('<div class="breadcrumbs">') :].split("</div>")[0]
    assert title in breadcrumbs
    market = Order.objects.create(instrument_id=424242, side="SELL", quantity=3, order_type="MKT")
    html = admin_client.get(f"/admin/orders/order/{market.pk}/change/", secure=True)
    assert f"<h2>Order #{market.pk}: SELL 3 conid 424242 MKT (submitted)</h2>" in (
        html.content.decode()
    )


def test_a_trade_and_a_position_are_titled_with_their_symbol(admin_client, filled):
    trade = Trade.objects.get(order=filled)
    html = admin_client.get(f"/admin/orders/trade/{trade.pk}/change/", secure=True)
    assert f"<h2>Trade #{trade.pk}: 10 AAPL @ 100.00</h2>" in html.content.decode()
    position = Position.objects.get(instrument=filled.instrument)
    html = admin_client.get(f"/admin/orders/position/{position.pk}/change/", secure=True)
    assert "<h2>10 AAPL @ 100.00</h2>" in html.content.decode()


def test_an_order_page_links_to_its_strategy_and_the_run_that_decided_it(admin_client):
    execution = ExecutionFactory(strategy=StrategyFactory(name="Momentum"))
    decision = make_decision(strategy=execution.strategy, workflow_execution=execution)
    order = make_fill(decision=decision, instrument=decision.code)
    html = admin_client.get(f"/admin/orders/order/{order.pk}/change/", secure=True)
    html = html.content.decode()
    strategy = execution.strategy
    assert f'<a href="/admin/strategies/strategy/{strategy.pk}/change/">Momentum</a>' in html
    execution_url = f"/admin/workflows/workflowexecution/{execution.pk}/change/"
    assert f'<a href="{execution_url}">execution #{execution.pk}</a>' in html
    manual = OrderFactory()
    html = admin_client.get(f"/admin/orders/order/{manual.pk}/change/", secure=True)
    assert "- (a manual order)" in html.content.decode()


def test_the_order_list_filters_to_one_strategy(admin_client):
    mine, other = make_decision(), make_decision()
    ours = make_fill(decision=mine, instrument=mine.code)
    theirs = make_fill(decision=other, instrument=other.code)
    url = f"/admin/orders/order/?strategy={mine.strategy_id}"
    html = admin_client.get(url, secure=True).content.decode()
    assert f"/admin/orders/order/{ours.pk}/change/" in html
    assert f"/admin/orders/order/{theirs.pk}/change/" not in html
    assert f'<li class="selected">\n    <a href="?strategy={mine.strategy_id}"' in html


def test_the_order_list_reads_like_money(admin_client):
    OrderFactory(instrument=CodeFactory(symbol="SPY"), quantity="17", price="540.82")
    OrderFactory(instrument=CodeFactory(symbol="QQQ"), side="SELL", order_type="STP",
                 price=None, stop_price="480.5")  # fmt: skip
    listing = admin_client.get("/admin/orders/order/", secure=True).content.decode()
    assert '<td class="field-quantity_shown">17</td>' in listing
    assert '<td class="field-price_shown">540.82</td>' in listing
    assert '<td class="field-stop_price_shown">480.50</td>' in listing  # where the stop triggers
    assert "540.820000" not in listing and "17.0000" not in listing


def test_a_working_order_page_follows_its_state_and_a_final_one_does_not(admin_client, client):
    working = OrderFactory(quantity="5", price="199.5", status="submitted")
    page = admin_client.get(f"/admin/orders/order/{working.pk}/change/", secure=True)
    html = page.content.decode()
    state_url = f"/admin/orders/order/{working.pk}/state/"
    assert f'id="order-follow" data-url="{state_url}" data-status="submitted"' in html
    assert "tradingsite/order_follow" in html
    assert admin_client.get(state_url, secure=True).json() == {
        "id": working.pk, "status": "submitted", "status_shown": "Submitted",
        "filled_quantity": "0", "avg_fill_price": "-", "final": False,
    }  # fmt: skip
    filled = make_fill(quantity="5", price="199")
    state = admin_client.get(f"/admin/orders/order/{filled.pk}/state/", secure=True).json()
    assert (state["status"], state["filled_quantity"], state["avg_fill_price"]) == (
        "filled", "5", "199.00"
    )  # fmt: skip
    assert state["final"] is True
    page = admin_client.get(f"/admin/orders/order/{filled.pk}/change/", secure=True)
    assert 'id="order-follow"' not in page.content.decode()
    # staff only: anyone else is sent to the login page, a missing order is not found
    assert client.get(state_url, secure=True).status_code == 302
    assert admin_client.get("/admin/orders/order/2000000000/state/", secure=True).status_code == 404
