"""Codes edited through the services (or looked up at IB), market data shown as a chart."""

import json

import pytest

from marketdata.models import Code
from marketdata.tests.factories import CodeFactory, cache_market_data
from tradingsite.testing.factories import make_decision

pytestmark = pytest.mark.django_db


def code_form(**fields):
    return {"symbol": "", "conid": "", "exchange": "SMART", "currency": "USD", "sec_type": "STK",
            **fields}  # fmt: skip


def test_a_code_with_its_conid_is_stored_upper_case(admin_client):
    response = admin_client.post("/admin/marketdata/code/add/",
                                 code_form(symbol="ibm", conid="8314"), secure=True)  # fmt: skip
    assert response.status_code == 302
    assert Code.objects.get(conid=8314).symbol == "IBM"


def test_a_taken_conid_is_refused_next_to_the_field(admin_client):
    CodeFactory(conid=8314)
    response = admin_client.post("/admin/marketdata/code/add/",
                                 code_form(symbol="IBM", conid="8314"), secure=True)  # fmt: skip
    assert response.context["adminform"].form.errors["conid"] == [
        "Code with this IB contract id already exists."
    ]


@pytest.mark.parametrize("symbol", ["../../x", "-AAPL", "A/B"])
def test_with_a_conid_a_symbol_that_is_not_one_is_refused_next_to_the_field(admin_client, symbol):
    response = admin_client.post("/admin/marketdata/code/add/",
                                 code_form(symbol=symbol, conid="8314"), secure=True)  # fmt: skip
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["symbol"] == [
        "Use at most 32 letters, digits, spaces, dots and dashes, starting with a letter or a "
        "digit."
    ]
    assert not Code.objects.exists()


def test_without_a_conid_the_symbol_is_looked_up_at_ib(admin_client, gateway):
    response = admin_client.post("/admin/marketdata/code/add/", code_form(symbol="aapl"),
                                 secure=True, follow=True)  # fmt: skip
    code = Code.objects.get(symbol="AAPL")
    assert f"AAPL resolved at IB: conid {code.conid}." in response.content.decode()


def test_adding_a_stored_code_again_is_refused_naming_it(admin_client, gateway):
    admin_client.post("/admin/marketdata/code/add/", code_form(symbol="AAPL"), secure=True,
                      follow=True)  # fmt: skip
    stored = Code.objects.get(symbol="AAPL")
    response = admin_client.post("/admin/marketdata/code/add/", code_form(symbol="aapl"),
                                 secure=True)  # fmt: skip
    assert response.context["adminform"].form.errors["symbol"] == [
        f"conid {stored.conid} is already stored as code #{stored.pk}, {stored}."
    ]
    assert "was added successfully" not in response.content.decode()
    assert Code.objects.count() == 1


def test_an_unknown_symbol_is_refused_with_the_brokers_reason(admin_client, gateway):
    response = admin_client.post("/admin/marketdata/code/add/", code_form(symbol="APPL"),
                                 secure=True)  # fmt: skip
    errors = response.context["adminform"].form.errors
    assert "symbol" in errors and not Code.objects.filter(symbol="APPL").exists()


def test_nothing_is_looked_up_or_stored_while_a_field_is_wrong(admin_client, gateway):
    data = code_form(symbol="MSFT", exchange="X" * 40)
    response = admin_client.post("/admin/marketdata/code/add/", data, secure=True)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["exchange"] == [
        "Ensure this value has at most 32 characters (it has 40)."
    ]
    assert not Code.objects.exists()


def test_a_conid_ib_would_never_give_is_refused_as_the_api_refuses_it(admin_client):
    response = admin_client.post("/admin/marketdata/code/add/",
                                 code_form(symbol="NEG", conid="-5"), secure=True)  # fmt: skip
    assert response.context["adminform"].form.errors["conid"] == [
        "Ensure this value is greater than or equal to 1."
    ]
    assert not Code.objects.exists()
    code = CodeFactory(conid=8314)
    response = admin_client.post(f"/admin/marketdata/code/{code.pk}/change/",
                                 code_form(symbol=code.symbol, conid="0"), secure=True)  # fmt: skip
    assert response.context["adminform"].form.errors["conid"] == [
        "Ensure this value is greater than or equal to 1."
    ]
    assert Code.objects.get(pk=code.pk).conid == 8314


def test_the_conid_of_a_traded_code_cannot_change(admin_client):
    decision = make_decision()
    from orders.tests.factories import OrderFactory

    OrderFactory(instrument=decision.code)
    code = decision.code
    response = admin_client.post(f"/admin/marketdata/code/{code.pk}/change/",
                                 code_form(symbol=code.symbol, conid="1"), secure=True)  # fmt: skip
    assert response.context["adminform"].form.errors["conid"] == [
        "Cannot change once orders, trades or positions use it."
    ]
    page = admin_client.get(f"/admin/marketdata/code/{code.pk}/change/", secure=True)
    assert f"/admin/strategies/decision/?code__id__exact={code.pk}" in page.content.decode()


def test_a_code_with_decisions_is_kept_when_deleted(admin_client):
    code = make_decision().code
    response = admin_client.post(f"/admin/marketdata/code/{code.pk}/delete/", {"post": "yes"},
                                 secure=True, follow=True)  # fmt: skip
    assert "Cannot delete code" in response.content.decode()
    assert Code.objects.filter(pk=code.pk).exists()


def test_market_data_shows_its_bars_as_a_chart_with_indicators(admin_client):
    code = CodeFactory(symbol="AAPL")
    row = cache_market_data(code, period="1 Y", bar="1 day")
    listing = admin_client.get("/admin/marketdata/marketdata/?bar=1+day", secure=True)
    assert '<td class="field-symbol">AAPL</td>' in listing.content.decode()
    page = admin_client.get(f"/admin/marketdata/marketdata/{row.pk}/change/", secure=True)
    html = page.content.decode()
    assert "260 bars from 2025-01-01 to 2025-09-17" in html
    assert f'<canvas data-chart-id="md-{row.pk}">' in html
    assert "vendor/chart.umd.min.js" in html
    start = html.index(f'<script id="md-{row.pk}" type="application/json">') + len(
        f'<script id="md-{row.pk}" type="application/json">'
    )
    chart = json.loads(html[start : html.index("</script>", start)])
    assert chart["title"] == "AAPL - 1 Y / 1 day" and len(chart["close"]) == 260
    assert set(chart["lines"]) == {"sma_20", "sma_50", "sma_200", "bb_upper", "bb_lower",
                                   "supertrend"}  # fmt: skip


def test_a_conid_is_called_an_ib_contract_id(admin_client):
    code = CodeFactory(symbol="AAPL")
    cache_market_data(code, period="1 Y", bar="1 day")
    for url in ("/admin/marketdata/code/", "/admin/marketdata/marketdata/"):
        listing = admin_client.get(url, secure=True).content.decode()
        assert ">IB contract id</a>" in listing and ">Conid</a>" not in listing
    page = admin_client.get(f"/admin/marketdata/code/{code.pk}/change/", secure=True)
    assert '<label for="id_conid">IB contract id:</label>' in page.content.decode()


def test_market_data_is_titled_with_its_symbol(admin_client):
    row = cache_market_data(CodeFactory(symbol="AAPL"), period="1 Y", bar="1 day")
    html = admin_client.get(f"/admin/marketdata/marketdata/{row.pk}/change/", secure=True)
    html = html.content.decode()
    title = f"AAPL 1 Y / 1 day at {row.created_at:%Y-%m-%d %H:%M}"
    assert f"<h2>{title}</h2>" in html
    breadcrumbs = html[html.index('<div class="breadcrumbs">') :].split("</div>")[0]
    assert title in breadcrumbs and str(row.conid) not in breadcrumbs
