"""The admin as a trader's desk, in a real browser (Playwright + Debian's Chromium) on a laptop's
screen (1366 x 768): an order placed from the admin fills and its position is closed the same
way, the numbers on the way read like money, and the busy lists fit the screen."""

import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.admin.utils import display_for_value
from django.db import connection
from django.utils import timezone

from marketdata.models import Code
from marketdata.services import code_resolve
from orders.models import Order, Position
from orders.tests.factories import OrderFactory
from orders.tests.test_listener import listening  # noqa: F401 (a fixture)
from strategies.tests.factories import StrategyFactory
from tradingsite.testing.factories import ExecutionFactory, make_decision, make_fill
from tradingsite.tests.test_browser import CHROMIUM, chromium, logged_in_tab, shot  # noqa: F401
from workflows.models import WorkflowExecution
from workflows.services import workflow_create
from workflows.templates import TEMPLATES

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed"),
]

LAPTOP = {"width": 1366, "height": 768}


@pytest.fixture
def desk(chromium, live_server, admin_user, settings):  # noqa: F811
    context, tab = logged_in_tab(chromium, live_server, admin_user, settings, LAPTOP)
    yield tab
    context.close()


def in_a_thread(work):
    """ORM and IB work off Playwright's thread (its event loop is this thread's)."""

    def run():
        try:
            return work()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def until(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def place_from_the_form(tab, *, typed, symbol, side, quantity, order_type="MKT", price=None,
                        tif="DAY"):  # fmt: skip
    tab.goto("/admin/orders/order/")
    tab.click("#new-order")
    tab.click(".field-code .select2-selection")
    tab.fill(".select2-container--open .select2-search__field", typed)
    tab.click(f".select2-results__option >> text=/^{symbol} /")
    tab.check(f"input[name=side][value={side}]")
    tab.fill("#id_quantity", str(quantity))
    tab.select_option("#id_order_type", order_type)
    if price is not None:
        tab.fill("#id_price", price)
    tab.select_option("#id_tif", tif)
    tab.click("input[name=_place]")
    tab.wait_for_selector("ul.messagelist")
    return tab.inner_text("ul.messagelist")


def shown(tab, field):
    return tab.inner_text(f".field-{field} .readonly")


def until_shown(tab, field, text, timeout=20_000):
    """Until the page shows ``text`` in ``field`` by itself: nobody reloads it."""
    tab.wait_for_function(
        "([field, text]) => { const cell = document.querySelector(`.field-${field} .readonly`);"
        " return cell !== null && cell.textContent.trim() === text; }",
        arg=[field, text],
        timeout=timeout,
    )


def test_from_the_dashboard_an_order_placed_in_the_admin_fills_on_its_page_and_is_closed(
    desk,
    gateway,
    listening,  # noqa: F811
):
    """The issue's "done when", as a person does it: the dashboard, a New order, its page
    showing the fill as it comes (no reload), the position closed from its page, and every
    number on the way read like money."""
    in_a_thread(lambda: code_resolve(symbol="AAPL"))
    gateway.set_price("AAPL", 200)
    desk.goto("/admin/dashboard/")
    assert "No open position." in desk.inner_text("#positions")
    shot(desk, "20-dashboard-before")

    placed = place_from_the_form(desk, typed="AAP", symbol="AAPL", side="BUY", quantity=5,
                                 order_type="LMT", price="199.5", tif="GTC")  # fmt: skip
    bought = Order.objects.get(side="BUY")
    assert f"Order #{bought.pk} placed: BUY 5 AAPL LMT @ 199.50 GTC" in placed
    assert "Paper trading" in desk.inner_text("#content")
    assert desk.url.endswith(f"/admin/orders/order/{bought.pk}/change/")
    assert shown(desk, "status") == "Submitted"
    assert shown(desk, "price_shown") == "199.50"
    assert "this page follows the order" in desk.inner_text("#order-follow")
    shot(desk, "21-order-working")

    gateway.set_price("AAPL", 199)  # the market comes down to the limit: IB fills it
    until_shown(desk, "status", "Filled")
    assert shown(desk, "avg_fill_price_shown") == "199.00"
    assert shown(desk, "filled_quantity_shown") == "5"
    assert desk.locator("#order-follow").count() == 0  # a final order is no longer followed
    shot(desk, "22-order-filled")

    desk.goto("/admin/dashboard/")
    cells = desk.locator("#positions tbody tr").first.locator("td").all_inner_texts()
    assert cells[:3] == ["AAPL", "5", "199.00"]
    shot(desk, "23-dashboard-position")

    position = Position.objects.get(closed_at__isnull=True)
    desk.goto(f"/admin/orders/position/{position.pk}/change/")
    assert shown(desk, "average_cost_shown") == "199.00"
    desk.once("dialog", lambda dialog: dialog.accept())  # "Close this position at market?"
    desk.click("button.object-action[value=close_position]")
    desk.wait_for_selector("ul.messagelist")
    assert "Sent the exit of" in desk.inner_text("ul.messagelist")
    assert until(lambda: Position.objects.filter(closed_at__isnull=False).exists())
    sold = Order.objects.get(side="SELL")
    assert (sold.role, sold.order_type, sold.quantity) == ("exit", "MKT", 5)

    desk.goto("/admin/dashboard/")
    assert "No open position." in desk.inner_text("#positions")
    realized = desk.inner_text("#realized-total")
    assert realized == "-2.00"  # bought and sold at 199.00: IB's 1.00 commission each way
    desk.wait_for_selector("#pnl-canvas[data-drawn=true]")
    tooltip = desk.evaluate(
        "document.getElementById('pnl-canvas').chart.options.plugins.tooltip.callbacks"
        ".label({dataset: {label: 'cumulative'}, parsed: {y: 1234.5}})"
    )
    assert tooltip == "cumulative: +1,234.50"  # the chart's numbers read like money too
    shot(desk, "24-dashboard-closed")


def test_an_order_placed_from_the_admin_at_the_market_fills_and_is_sold_the_same_way(
    desk,
    gateway,
    listening,  # noqa: F811
):
    in_a_thread(lambda: code_resolve(symbol="AAPL"))
    placed = place_from_the_form(desk, typed="AAP", symbol="AAPL", side="BUY", quantity=5)
    bought = Order.objects.get(side="BUY")
    assert f"Order #{bought.pk} placed: BUY 5 AAPL MKT DAY" in placed
    until_shown(desk, "status", "Filled")  # at once, or by itself as IB reports it
    bought.refresh_from_db()
    assert shown(desk, "avg_fill_price_shown") == f"{bought.avg_fill_price:.2f}"
    assert shown(desk, "filled_quantity_shown") == "5"

    placed = place_from_the_form(desk, typed="AAP", symbol="AAPL", side="SELL", quantity=5)
    sold = Order.objects.get(side="SELL")
    assert f"Order #{sold.pk} placed: SELL 5 AAPL MKT DAY" in placed
    assert until(lambda: Position.objects.filter(closed_at__isnull=False).exists())
    desk.goto("/admin/dashboard/")
    assert "No open position." in desk.inner_text("#positions")
    realized = desk.inner_text("#realized-total")
    assert realized[0] in "+-" and realized[-3] == "."  # signed, two places


def test_a_working_order_is_cancelled_from_its_page_at_ib_and_on_the_page(
    desk,
    gateway,
    listening,  # noqa: F811
):
    """MSFT is no stored code: the form's search finds it at IB by its name, and placing the
    order stores it. The order works far from the market until it is cancelled."""
    gateway.set_price("MSFT", 400)
    placed = place_from_the_form(desk, typed="micro", symbol="MSFT", side="BUY", quantity=3,
                                 order_type="LMT", price="300", tif="GTC")  # fmt: skip
    order = Order.objects.get(side="BUY")
    assert f"Order #{order.pk} placed: BUY 3 MSFT LMT @ 300.00 GTC" in placed
    assert Code.objects.get(symbol="MSFT").conid == order.instrument_id == 272093
    assert shown(desk, "status") == "Submitted"
    [at_ib] = [o for o in gateway.orders() if o.order_id == order.ibkr_order_id]
    assert at_ib.status == "Submitted"  # working at IB, far from the market
    asked = []
    desk.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    desk.click("button.object-action[value=cancel_order]")
    desk.wait_for_selector("ul.messagelist")
    assert asked == ["Ask IB to cancel this order?"]
    assert f"Asked IB to cancel Order #{order.pk}: BUY 3 MSFT LMT" in desk.inner_text(
        "ul.messagelist"
    )
    until_shown(desk, "status", "Cancelled")
    [at_ib] = [o for o in gateway.orders() if o.order_id == order.ibkr_order_id]
    assert at_ib.status == "Cancelled"  # IB's own book
    assert desk.locator("button.object-action[value=cancel_order]").count() == 0
    shot(desk, "29-order-cancelled")


def test_a_decision_page_and_the_dashboard_read_like_money(desk):
    decision = in_a_thread(
        lambda: make_decision(current_price="540.82", target_price="560.5", stop_loss="530.98")
    )
    desk.goto(f"/admin/strategies/decision/{decision.pk}/change/")
    assert desk.inner_text(".field-current_price_shown .readonly") == "540.82"
    assert desk.inner_text(".field-r_coefficient_shown .readonly") == "2.0 R"
    assert desk.inner_text(".field-profit_margin_shown .readonly") == "3.64%"
    shot(desk, "24-decision")
    desk.goto("/admin/dashboard/")
    cells = desk.locator("#decisions tbody tr").first.locator("td").all_inner_texts()
    assert cells[4:8] == ["540.82", "560.50", "530.98", "2.0 R"]


@pytest.mark.parametrize("listing", ["workflows/workflowexecution", "orders/order", "orders/trade"])
def test_busy_lists_fit_a_laptop_screen(desk, listing):
    def rows():
        for n in range(3):
            strategy = StrategyFactory(name=f"Momentum on the largest US technology stocks {n}")
            execution = ExecutionFactory(strategy=strategy)
            decision = make_decision(strategy=strategy, workflow_execution=execution)
            make_fill(quantity="1234.5", price="12345.678901", decision=decision,
                      instrument=decision.code)  # fmt: skip
            OrderFactory(quantity="100", price="540.82")

    in_a_thread(rows)
    desk.goto(f"/admin/{listing}/")
    desk.wait_for_selector("#result_list")
    # Neither the page nor the admin's table box (which scrolls on its own) is wider than
    # the screen: no column is cut off.
    page, table, box = desk.evaluate(
        "[document.documentElement.scrollWidth, document.querySelector('#changelist .results')"
        ".scrollWidth, document.querySelector('#changelist .results').clientWidth]"
    )
    assert page <= LAPTOP["width"], f"{listing}: the page is {page} px wide"
    assert table <= box, f"{listing}: the table is {table} px wide in a box of {box} px"
    shot(desk, f"25-{listing.replace('/', '-')}-1366")


def test_the_execution_page_its_progress_bar_and_the_api_agree_while_it_runs(desk):
    """Opened while the run was queued, the page follows it: status, start and bar together."""
    execution = in_a_thread(lambda: ExecutionFactory(status="pending", started_at=None))
    desk.goto(f"/admin/workflows/workflowexecution/{execution.pk}/change/")
    assert desk.inner_text(".field-status_badge .readonly") == "pending"
    assert desk.inner_text(".field-started_at .readonly") == "-"

    def start():  # what the worker writes when it takes the run and reaches step 3
        WorkflowExecution.objects.filter(pk=execution.pk).update(
            status="running", started_at=timezone.now(), progress={
                "current_step": 3, "step_type": "fetch_data", "total_steps": 9,
                "current_symbol": "AAPL", "completed_symbols": 0, "total_symbols": 1,
                "percent": 22,
            },
        )  # fmt: skip
        return WorkflowExecution.objects.get(pk=execution.pk)

    running = in_a_thread(start)
    desk.wait_for_function(
        "document.querySelector('.exec-progress .percent').textContent === '22%'"
    )
    assert desk.inner_text(".field-status_badge .readonly") == "running"
    shown_start = desk.inner_text(".field-started_at .readonly")
    assert shown_start == display_for_value(running.started_at, "-")
    assert "Step 3 of 9 (fetch_data) on AAPL" in desk.inner_text(".exec-progress .text")
    api = desk.request.get(f"/api/executions/{execution.pk}/").json()
    assert api["status"] == "running" and api["started_at"] is not None
    shot(desk, "26-execution-running")


def test_a_workflow_save_that_would_break_a_strategy_is_refused_then_confirmed(desk):
    def made():
        template = TEMPLATES["two_indicator"]
        workflow = workflow_create(
            name="Desk workflow", type="two_indicator", steps=template["steps"],
            default_params=template["default_params"],
        )  # fmt: skip
        return workflow, StrategyFactory(name="Desk trend", workflow=workflow, active=True)

    workflow, strategy = in_a_thread(made)
    desk.goto(f"/admin/workflows/workflow/{workflow.pk}/change/")
    desk.fill("#id_steps", desk.input_value("#id_steps").replace("{{period_1}}", "{{perod_1}}"))
    desk.click("input[name=_save]")
    errors = desk.inner_text(".errornote + ul.errorlist, ul.errorlist.nonfield")
    assert "Saving would break 1 strategy using this workflow:" in errors
    assert f"Desk trend (#{strategy.pk}): perod_1: is required by the workflow" in errors
    shot(desk, "27-workflow-save-refused")
    desk.check("#id_pause_strategies")
    desk.click("input[name=_save]")
    desk.wait_for_selector("ul.messagelist")
    assert "Paused, as confirmed: Desk trend." in desk.inner_text("ul.messagelist")
    shot(desk, "28-workflow-saved-strategy-paused")
    strategy.refresh_from_db()
    workflow.refresh_from_db()
    assert not strategy.active and "{{perod_1}}" in str(workflow.steps)
