"""The dashboard: today's runs, open positions, realized P&L, recent decisions, price charts."""

import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from marketdata.services import code_resolve, market_data_get, market_data_purge
from marketdata.tests.factories import CodeFactory, OhlcvBarFactory, cache_market_data
from orders.models import Position, Trade
from orders.services import order_fill_record, position_mark_price
from orders.tests.factories import OrderFactory
from strategies.tests.factories import StrategyFactory
from tradingsite.broker import reset_broker
from tradingsite.dashboard import PERMISSIONS
from tradingsite.testing.factories import ExecutionFactory, make_decision

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_gateway(settings):
    """Unless a test starts one, IB is down: the dashboard says so at once and shows the rest."""
    settings.IBKR_HOST, settings.IBKR_PORT, settings.IBKR_CONNECT_ATTEMPTS = "127.0.0.1", 9, 1
    reset_broker()
    yield
    reset_broker()


def test_the_accounts_money_is_ibs_and_a_position_says_when_it_was_priced(admin_client, gateway):
    aapl = CodeFactory(symbol="AAPL")
    fill(aapl, "BUY", 4, "100")
    position_mark_price(conid=aapl.conid, price="105")
    page = admin_client.get("/admin/dashboard/", secure=True).content.decode()
    assert '<div class="figure" id="net-liquidation">1,000,000.00</div>' in page
    assert '<div class="figure" id="available-funds">1,000,000.00</div>' in page
    assert "Account DU0000001, as IB reported it at" in page
    priced = Position.objects.get(instrument=aapl).updated_at.strftime("%Y-%m-%d %H:%M:%S")
    assert f'<td class="number">105.00</td><td>{priced}</td>' in page


def test_without_ib_the_dashboard_says_the_account_is_not_available(admin_client):
    page = admin_client.get("/admin/dashboard/", secure=True).content.decode()
    assert (
        '<p class="errornote" id="account-unavailable">IB&#x27;s account summary is not '
        "available: Cannot reach IB Gateway/TWS at 127.0.0.1:9" in page
    )


def script(html, element_id):
    start = html.index(f'<script id="{element_id}" type="application/json">')
    start = html.index(">", start) + 1
    return json.loads(html[start : html.index("</script>", start)])


def test_only_staff_see_the_dashboard(client, django_user_model):
    response = client.get("/admin/dashboard/", secure=True)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    django_user_model.objects.create_user("viewer", password="pw-viewer-123")
    client.login(username="viewer", password="pw-viewer-123")
    assert client.get("/admin/dashboard/", secure=True).status_code == 302


def test_staff_without_the_permissions_to_view_what_it_shows_are_refused(client, django_user_model):
    staff = django_user_model.objects.create_user("clerk", password="pw-clerk-123", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_code"))
    client.login(username="clerk", password="pw-clerk-123")
    assert client.get("/admin/dashboard/", secure=True).status_code == 403
    assert "Open the trading dashboard" not in client.get("/admin/", secure=True).content.decode()
    staff.user_permissions.add(*(
        Permission.objects.get(content_type__app_label=name.split(".")[0],
                               codename=name.split(".")[1])
        for name in PERMISSIONS
    ))  # fmt: skip
    assert client.get("/admin/dashboard/", secure=True).status_code == 200
    assert "Open the trading dashboard" in client.get("/admin/", secure=True).content.decode()


def test_the_sites_address_opens_the_dashboard(client, admin_client):
    response = client.get("/", secure=True, follow=True)
    assert response.redirect_chain[0] == ("/admin/dashboard/", 302)
    assert response.request["PATH_INFO"] == "/admin/login/"  # signed out: sign in first
    assert admin_client.get("/", secure=True, follow=True).status_code == 200


def test_the_admin_index_links_to_the_dashboard(admin_client):
    page = admin_client.get("/admin/", secure=True).content.decode()
    assert 'href="/admin/dashboard/">Open the trading dashboard</a>' in page


def test_executions_today_and_their_success_rate(admin_client):
    for status in ("completed", "completed", "completed", "failed", "running"):
        ExecutionFactory(status=status)
    ExecutionFactory(status="failed", created_at=timezone.now() - timedelta(days=2))
    page = admin_client.get("/admin/dashboard/", secure=True).content.decode()
    assert '<div class="figure" id="executions-today">5</div>' in page
    assert '<div class="figure" id="success-rate">75%</div>' in page
    assert "success rate (3 completed, 1 failed)" in page


def fill(code, side, quantity, price, days_ago=0):
    order = OrderFactory(instrument=code, side=side, quantity=quantity)
    at = timezone.now() - timedelta(days=days_ago)
    return order_fill_record(order=order, quantity=str(quantity), price=price, at=at)


def test_open_positions_with_unrealized_pnl_and_realized_pnl_by_day(admin_client):
    aapl, msft = CodeFactory(symbol="AAPL"), CodeFactory(symbol="MSFT")
    fill(aapl, "BUY", 4, "100", days_ago=3)
    fill(aapl, "SELL", 4, "110", days_ago=2)  # +40 two days ago
    fill(msft, "SELL", 2, "100", days_ago=1)
    fill(msft, "BUY", 2, "105")  # a short closed today: -10
    fill(aapl, "BUY", 4, "100")
    position_mark_price(conid=aapl.conid, price="105")
    page = admin_client.get("/admin/dashboard/", secure=True).content.decode()
    # 4 x (105 - 100), signed and green
    assert '<th id="unrealized-total" class="number"><span class="pnl pnl-positive">+20.00<' in page
    assert ">AAPL</a></td>" in page and ">MSFT</a></td>" not in page
    pnl = script(page, "pnl-data")
    assert [float(v) for v in pnl["daily"]] == [40.0, -10.0]
    assert [float(v) for v in pnl["cumulative"]] == [40.0, 30.0]
    assert '<span id="realized-total"><span class="pnl pnl-positive">+30.00<' in page


def test_a_trade_closed_over_several_days_counts_on_each(admin_client):
    code = CodeFactory(symbol="AAPL")
    fill(code, "BUY", 10, "100", days_ago=3)
    fill(code, "SELL", 5, "110", days_ago=2)  # +50 that day
    fill(code, "SELL", 5, "90", days_ago=1)  # -50 the next
    pnl = script(admin_client.get("/admin/dashboard/", secure=True).content.decode(), "pnl-data")
    assert [float(v) for v in pnl["daily"]] == [50.0, -50.0]
    assert [float(v) for v in pnl["cumulative"]] == [50.0, 0.0]
    trade = Trade.objects.get()
    assert trade.realized_pnl == 0 and sum(e.realized_pnl for e in trade.exits.all()) == 0


def test_realized_pnl_is_net_of_ibs_commissions(admin_client):
    code = CodeFactory(symbol="PEP")
    bought = OrderFactory(instrument=code, side="BUY", quantity=10)
    order_fill_record(order=bought, quantity="10", price="100", commission=Decimal("1.00"))
    sold = OrderFactory(instrument=code, side="SELL", quantity=4)
    order_fill_record(order=sold, quantity="4", price="101.31", commission=Decimal("1.00"))
    page = admin_client.get("/admin/dashboard/", secure=True).content.decode()
    # 4 x 1.31 = 5.24 gross, less the sell's 1.00 and 4/10 of the buy's 1.00: IB's 3.84.
    assert '<span id="realized-total"><span class="pnl pnl-positive">+3.84<' in page
    assert '<span id="fees-total">1.40<' in page
    assert [float(v) for v in script(page, "pnl-data")["daily"]] == [3.84]


def test_recent_decisions_link_to_their_order_and_charts_mark_them(admin_client):
    code = CodeFactory(symbol="MSFT")
    strategy = StrategyFactory(active=True)
    strategy.codes.set([code])
    cache_market_data(code, period="1 Y", bar="1 day", trend="up")
    decision = make_decision(code=code, strategy=strategy)
    order = OrderFactory(instrument=code, decision=decision)
    page = admin_client.get("/admin/dashboard/", secure=True).content.decode()
    assert f'href="/admin/orders/order/{order.pk}/change/">#{order.pk}</a>' in page
    chart = script(page, f"price-{code.pk}")
    assert chart["title"] == "MSFT - 1 Y / 1 day" and len(chart["close"]) == 180
    assert {"sma_20", "sma_50", "bb_upper", "supertrend"} <= set(chart["lines"])
    # Made after the last cached bar: marked on that bar, the one it was made on.
    assert chart["markers"] == [{
        "index": 179, "price": 100.0, "type": "buy",
        "label": f"buy #{decision.pk} @ 100.00 ({decision.created_at:%Y-%m-%d %H:%M} UTC)",
    }]  # fmt: skip
    assert "vendor/chart.umd.min.js" in page


def test_charts_read_the_bar_store_dated_on_the_x_axis_when_the_cache_is_empty(
    admin_client, django_assert_max_num_queries
):
    codes = [CodeFactory(symbol="MSFT"), CodeFactory(symbol="SPY")]
    strategy = StrategyFactory(active=True)
    strategy.codes.set(codes)
    first = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=500)
    for code in codes:
        for day in range(450):
            price = 100 + day * 0.1
            OhlcvBarFactory(ticker=code, timestamp=first + timedelta(days=day), open=price,
                            high=price + 1, low=price - 1, close=price)  # fmt: skip
    decision = make_decision(code=codes[0], strategy=strategy)

    page = admin_client.get("/admin/dashboard/", secure=True).content.decode()

    chart = script(page, f"price-{codes[0].pk}")
    assert chart["title"] == "MSFT - daily bars"
    assert len(chart["close"]) == 180 and chart["close"][-1] == pytest.approx(100 + 449 * 0.1)
    assert chart["labels"][-1] == (first + timedelta(days=449)).date().isoformat()
    # SMA 200 is there from the first bar shown: the store gave the 199 bars before it.
    assert None not in chart["lines"]["sma_200"]
    assert chart["markers"][0]["index"] == 179 and chart["markers"][0]["label"].startswith(
        f"buy #{decision.pk}"
    )
    assert script(page, f"price-{codes[1].pk}")["title"] == "SPY - daily bars"


def test_price_charts_mark_the_trades_entries_and_exits(admin_client):
    code = CodeFactory(symbol="MSFT")
    StrategyFactory(active=True).codes.set([code])
    row = cache_market_data(code, period="1 Y", bar="1 day", trend="up")
    fill(code, "BUY", 10, "100", days_ago=1)
    fill(code, "SELL", 10, "104")  # closed today: +40 gross
    trade = Trade.objects.get()
    page = admin_client.get("/admin/dashboard/", secure=True).content.decode()
    markers = script(page, f"price-{code.pk}")["markers"]
    marks = [(m["type"], m["price"], m["index"]) for m in markers]
    last = len(row.data["bars"]["close"][-180:]) - 1  # both after the last cached bar
    assert marks == [("entry long", 100.0, last), ("exit", 104.0, last)]
    labels = [m["label"] for m in markers]
    assert labels[0].startswith(f"trade #{trade.pk} entry long @ 100.00 (")
    assert labels[1].startswith(f"trade #{trade.pk} exit @ 104.00, net +40.00 (")


def test_the_trader_chooses_which_codes_to_chart(admin_client):
    codes = [CodeFactory(symbol=f"S{n:02d}") for n in range(10)]
    StrategyFactory(active=True).codes.set(codes)
    other = CodeFactory(symbol="ZZZ")  # no active strategy trades it
    for code in [*codes, other]:
        cache_market_data(code, period="1 Y", bar="1 day", trend="flat")

    def charted(query=""):
        page = admin_client.get(f"/admin/dashboard/{query}", secure=True).content.decode()
        return page, re.findall(r'aria-label="(\w+) price chart"', page)

    page, symbols = charted()
    assert symbols == [f"S{n:02d}" for n in range(8)]  # none chosen: the first eight
    assert 'name="code"' in page
    page, symbols = charted(f"?code={other.pk}&code={codes[9].pk}")
    assert symbols == ["S09", "ZZZ"]
    page, symbols = charted("?code=999999")  # not a code: said at the chooser, default shown
    assert "Select a valid choice. 999999 is not one of the available choices." in page
    assert symbols == [f"S{n:02d}" for n in range(8)]


def test_each_strategy_shows_its_performance_with_a_few_queries(
    admin_client, django_assert_max_num_queries
):
    strategies = [StrategyFactory(active=True, name=f"Strategy {n}") for n in range(3)]
    page = admin_client.get("/admin/dashboard/", secure=True).content.decode()
    for strategy in strategies:
        assert f'id="performance-{strategy.pk}"' in page
        assert script(page, f"equity-{strategy.pk}")["title"] == strategy.name
    for _ in range(8):
        StrategyFactory(active=True)
    with django_assert_max_num_queries(30) as counted:
        admin_client.get("/admin/dashboard/", secure=True)
    few = len(counted)
    for _ in range(8):
        StrategyFactory(active=True)
    with django_assert_max_num_queries(few):  # the same queries for more strategies
        admin_client.get("/admin/dashboard/", secure=True)


def test_the_price_charts_stay_full_all_day_the_cache_purged(admin_client, gateway):
    code = code_resolve(symbol="AAPL")
    StrategyFactory(active=True).codes.set([code])
    fetched = market_data_get(code=code, period="1 Y", bar="1 day")  # a run's fetch
    # An hour and more later the hourly purge has emptied the cache; IB is not asked.
    gateway.stop()
    reset_broker()
    assert market_data_purge(now=timezone.now() + timedelta(hours=2)) == 1

    page = admin_client.get("/admin/dashboard/", secure=True).content.decode()

    chart = script(page, f"price-{code.pk}")
    assert chart["title"] == "AAPL - daily bars"
    bars = fetched.data["bars"]
    assert chart["labels"] == [time[:10] for time in bars["time"][-180:]]  # dates, from the store
    assert chart["close"] == bars["close"][-180:]
