"""Done when (issue 16): the dashboard shows a strategy's equity curve, drawdown, win rate and
profit factor, the same figures the API returns, and each matches a library's on the same
trades: empyrical-reloaded for the Sharpe ratio and the drawdown of the equity curve, pandas
for the win rate and profit factor of the closed trades (empyrical has no trade figures)."""

import json
import re
from decimal import Decimal

import empyrical
import pandas as pd
import pytest
from django.db.models import F

from marketdata.tests.factories import CodeFactory
from orders.models import Trade
from performance import metrics
from performance.services import performance_snapshot
from strategies.tests.factories import StrategyFactory
from tradingsite.broker import reset_broker
from tradingsite.testing.api import SecureAPIClient

from .factories import at, fill

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture(autouse=True)
def no_gateway(settings):
    """IB is down: the dashboard says so at once and shows the rest."""
    settings.IBKR_HOST, settings.IBKR_PORT, settings.IBKR_CONNECT_ATTEMPTS = "127.0.0.1", 9, 1
    reset_broker()
    yield
    reset_broker()


@pytest.fixture
def strategy():
    """Six closed round trips over three weeks (wins, losses, a short), IB's 1.00 a fill."""
    strategy = StrategyFactory(name="Trend", active=True, param={"account_size": "20000"})
    aapl, msft = CodeFactory(symbol="AAPL"), CodeFactory(symbol="MSFT")
    trips = [  # code, side, quantity, entry, exit, entry day, exit day (March 2025)
        (aapl, "BUY", "10", "100", "112", 3, 5),
        (msft, "SELL", "5", "200", "190", 4, 6),
        (aapl, "BUY", "10", "110", "101", 7, 10),
        (msft, "BUY", "8", "195", "199", 11, 12),
        (aapl, "SELL", "10", "100", "104", 13, 17),
        (msft, "BUY", "4", "190", "215", 18, 20),
    ]
    for code, side, quantity, entry, exit_, opened, closed in trips:
        fill(code, side, quantity, entry, at(opened), strategy=strategy)
        fill(code, "SELL" if side == "BUY" else "BUY", quantity, exit_, at(closed),
             strategy=strategy)  # fmt: skip
    return strategy


def figure(page, strategy, name):
    panel = page[page.index(f'id="performance-{strategy.pk}"') :]
    return re.search(rf'data-figure="{name}">([^<]*)<', panel).group(1)


def chart(page, element_id):
    start = page.index(f'<script id="{element_id}" type="application/json">')
    start = page.index(">", start) + 1
    return json.loads(page[start : page.index("</script>", start)])


def test_dashboard_api_and_library_agree_on_a_strategys_figures(admin_client, admin_user, strategy):
    performance_snapshot(strategy=strategy)
    page = admin_client.get("/admin/dashboard/", secure=True).content.decode()
    api = SecureAPIClient()
    api.force_authenticate(admin_user)
    body = api.get(f"/api/strategies/{strategy.pk}/performance/").json()
    latest = body["latest"]

    # The dashboard shows the API's figures.
    assert figure(page, strategy, "win_rate") == f"{latest['win_rate']}%"
    assert figure(page, strategy, "profit_factor") == latest["profit_factor"]
    assert figure(page, strategy, "total_pnl") == latest["total_pnl"]
    assert figure(page, strategy, "sharpe_ratio") == latest["sharpe_ratio"]
    assert figure(page, strategy, "max_drawdown_percent") == f"{latest['max_drawdown_percent']}%"
    # Its equity and drawdown charts are the API's curve.
    drawn = chart(page, f"equity-{strategy.pk}")
    assert drawn["labels"] == [point["day"] for point in body["equity"]]
    assert drawn["equity"] == [point["equity"] for point in body["equity"]]
    assert [D(v) for v in drawn["drawdown"]] == [-D(p["drawdown_percent"]) for p in body["equity"]]

    # The library's figures on the same trades and the same curve.
    results = pd.Series([
        float(r) for r in Trade.objects.filter(strategy=strategy)
        .values_list(F("realized_pnl") - F("fees"), flat=True)
    ])  # fmt: skip
    assert len(results) == latest["num_trades"] == 6
    assert D(latest["win_rate"]) == round(D(100 * (results > 0).mean()), 2)
    profit_factor = results[results > 0].sum() / -results[results < 0].sum()
    assert D(latest["profit_factor"]) == round(D(profit_factor), 4)
    assert D(latest["realized_pnl"]) == round(D(results.sum()), 2)
    returns = pd.Series(metrics.daily_returns([D(p["equity"]) for p in body["equity"]]))
    assert D(latest["sharpe_ratio"]) == round(D(empyrical.sharpe_ratio(returns)), 4)
    assert D(latest["max_drawdown_percent"]) == round(D(-100 * empyrical.max_drawdown(returns)), 2)
    assert max(D(p["drawdown_percent"]) for p in body["equity"]) == D(
        latest["max_drawdown_percent"]
    )


def test_a_strategys_page_shows_its_figures_and_curve(admin_client, strategy):
    page = admin_client.get(f"/admin/strategies/strategy/{strategy.pk}/change/", secure=True)
    page = page.content.decode()
    assert "No snapshot yet: the beat job takes one every 15 minutes." in page
    assert chart(page, f"equity-{strategy.pk}")["equity"][0] == "20000.00"  # the capital

    row = performance_snapshot(strategy=strategy)
    page = admin_client.get(f"/admin/strategies/strategy/{strategy.pk}/change/", secure=True)
    page = page.content.decode()
    assert figure(page, strategy, "win_rate") == f"{row.win_rate}%"
    assert figure(page, strategy, "profit_factor") == str(row.profit_factor)
    assert f"as of the snapshot at {row.snapshot_time:%Y-%m-%d %H:%M} UTC" in page
    assert 'data-equity-id="equity-' in page and 'data-drawdown-id="equity-' in page
    assert "tradingsite/equity_chart.js" in page
