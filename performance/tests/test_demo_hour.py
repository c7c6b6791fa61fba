"""Done when (issue 16), through the real path: the demo strategy trading on a pinned clock
(the demo as ``make run`` loads it, its workflow run as beat runs it, brackets at the loopback
gateway over the socket, the market moving them to their targets and stops on purpose, the
snapshot job at each quarter hour; two quarter hours of trading stand for the hour, each run
of the agents being the slow part), and then the dashboard shows its equity curve, drawdown, win
rate and profit factor, the same as the API, and each as pandas and empyrical compute it on
the same trades."""

from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import empyrical
import pandas as pd
import pytest
from django.core.management import call_command
from django.db.models import F, Q

from orders.models import Order, OrderRole, OrderStatus, Trade
from performance import metrics
from performance.models import AgentPerformance
from performance.services import performance_snapshot_all
from strategies.models import Strategy
from tradingsite.management.commands.load_demo import DEMO_CODES
from tradingsite.testing.api import SecureAPIClient
from tradingsite.testing.market import market_date
from workflows.tasks import run_workflow

from .test_figures_agree import chart, figure

pytestmark = pytest.mark.django_db

D = Decimal
CLOCK_START = datetime.combine(market_date(), time(14, 45), tzinfo=UTC)  # 09:45 in New York


class Clock:
    """The gateway's clock: the pinned market date's session, moved on by the test."""

    def __init__(self):
        self.now = CLOCK_START

    def __call__(self):
        return self.now


CLOCK = Clock()
SYMBOLS = [symbol for symbol, _ in DEMO_CODES]
DEMO = dict.fromkeys(SYMBOLS, "up")  # bars that make the demo buy each
# Two quarter hours of trading: in each, one bracket reaches its target (a win) and the others
# their stops, filled a dollar through (losses): the hour ends below the capital, so the curve
# has a drawdown.
QUARTERS = 2


open_trades = Trade.objects.filter(
    Q(exit_quantity__isnull=True) | Q(exit_quantity__lt=F("entry_quantity"))
)


def children_of(entry):
    return {child.role: child for child in Order.objects.filter(parent_order=entry)}


@pytest.mark.parametrize("gateway", [{"now": CLOCK, "bars": DEMO}], indirect=True)
def test_an_hour_of_the_demo_shows_the_apis_and_the_librarys_figures(
    gateway, wait_for, admin_client, admin_user
):
    CLOCK.now = CLOCK_START
    call_command("load_demo")
    demo = Strategy.objects.get()
    opening = {symbol: gateway.price(symbol) for symbol in DEMO}

    for quarter in range(QUARTERS):
        for symbol, price in opening.items():  # the market back where the bars end
            gateway.set_price(symbol, price)
        result = run_workflow.apply(kwargs={"strategy_id": demo.pk}).get()
        assert result["orders_placed"] == len(DEMO), result
        entries = list(
            Order.objects.filter(role=OrderRole.ENTRY, decision__strategy=demo).exclude(
                pk__in=Trade.objects.exclude(exit_date=None).values("order_id")
            )
        )
        assert len(entries) == len(DEMO)
        ids = [entry.pk for entry in entries]
        assert wait_for(
            lambda ids=ids: all(
                o.status == OrderStatus.FILLED for o in Order.objects.filter(pk__in=ids)
            )
        )
        CLOCK.now += timedelta(minutes=7)
        for entry in entries:
            bracket = children_of(entry)
            if entry.instrument.symbol == SYMBOLS[quarter]:
                gateway.set_price(entry.instrument.symbol, bracket["take_profit"].price)
            else:
                gateway.set_price(entry.instrument.symbol, bracket["stop_loss"].stop_price - 1)
        assert wait_for(lambda: not open_trades.filter(strategy=demo).exists(), 10), quarter
        CLOCK.now += timedelta(minutes=8)
        performance_snapshot_all(now=CLOCK.now)  # the beat job's quarter hour

    assert AgentPerformance.objects.filter(strategy=demo).count() == QUARTERS
    page = admin_client.get("/admin/dashboard/", secure=True).content.decode()
    api = SecureAPIClient()
    api.force_authenticate(admin_user)
    body = api.get(f"/api/strategies/{demo.pk}/performance/").json()
    latest = body["latest"]

    # The dashboard shows the API's figures, and its charts are the API's curve.
    for name, shown in (("win_rate", "{}%"), ("profit_factor", "{}"), ("total_pnl", "{}"),
                        ("max_drawdown_percent", "{}%")):  # fmt: skip
        assert figure(page, demo, name) == shown.format(latest[name]), name
    drawn = chart(page, f"equity-{demo.pk}")
    assert drawn["labels"] == [point["day"] for point in body["equity"]]
    assert drawn["equity"] == [point["equity"] for point in body["equity"]]
    assert [D(v) for v in drawn["drawdown"]] == [-D(p["drawdown_percent"]) for p in body["equity"]]

    # The library's figures on the same trades.
    results = pd.Series([
        float(r) for r in Trade.objects.filter(strategy=demo)
        .values_list(F("realized_pnl") - F("fees"), flat=True)
    ])  # fmt: skip
    assert latest["num_trades"] == len(results) == len(SYMBOLS) * QUARTERS
    assert (results > 0).sum() == QUARTERS and (results < 0).sum() == len(results) - QUARTERS
    assert D(latest["win_rate"]) == round(D(100 * (results > 0).mean()), 2)
    profit_factor = results[results > 0].sum() / -results[results < 0].sum()
    assert D(latest["profit_factor"]) == round(D(profit_factor), 4)
    assert D(latest["realized_pnl"]) == round(D(results.sum()), 2)
    capital = D(body["equity"][0]["equity"])
    assert D(body["equity"][-1]["equity"]) == capital + D(latest["total_pnl"])
    returns = pd.Series(metrics.daily_returns([D(p["equity"]) for p in body["equity"]]))
    assert D(latest["max_drawdown_percent"]) > 0
    assert D(latest["max_drawdown_percent"]) == round(D(-100 * empyrical.max_drawdown(returns)), 2)
    assert max(D(p["drawdown_percent"]) for p in body["equity"]) == D(
        latest["max_drawdown_percent"]
    )
