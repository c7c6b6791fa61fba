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

from marketdata.services import code_resolve
from orders.models import Order, OrderStatus, Position
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


def place_from_the_form(tab, *, typed, symbol, side, quantity):
    tab.goto("/admin/orders/order/")
    tab.click("#new-order")
    tab.click(".field-code .select2-selection")
    tab.fill(".select2-container--open .select2-search__field", typed)
    tab.click(f".select2-results__option >> text=/^{symbol} /")
    tab.check(f"input[name=side][value={side}]")
    tab.fill("#id_quantity", str(quantity))
    tab.select_option("#id_order_type", "MKT")
    tab.select_option("#id_tif", "DAY")
    tab.click("input[name=_place]")
    tab.wait_for_selector("ul.messagelist")
    return tab.inner_text("ul.messagelist")


def test_an_order_placed_from_the_admin_fills_and_its_position_is_closed_the_same_way(
    desk,
    gateway,
    listening,  # noqa: F811
):
    in_a_thread(lambda: code_resolve(symbol="AAPL"))
    shot(desk, "20-orders-list")
    placed = place_from_the_form(desk, typed="AAP", symbol="AAPL", side="BUY", quantity=5)
    bought = Order.objects.get(side="BUY")
    assert f"Order #{bought.pk} placed: BUY 5 AAPL MKT DAY" in placed
    assert "Paper trading" in desk.inner_text("#content")
    assert until(lambda: Order.objects.get(pk=bought.pk).status == OrderStatus.FILLED)
    desk.reload()
    assert desk.inner_text(".field-status .readonly") == "Filled"
    bought.refresh_from_db()
    average = f"{bought.avg_fill_price:.2f}"
    assert desk.inner_text(".field-avg_fill_price_shown .readonly") == average
    assert desk.inner_text(".field-filled_quantity_shown .readonly") == "5"
    shot(desk, "21-order-filled")

    desk.goto("/admin/dashboard/")
    row = desk.locator("#positions tbody tr").first
    cells = row.locator("td").all_inner_texts()
    assert cells[0] == "AAPL" and cells[1] == "5" and cells[2] == f"{bought.avg_fill_price:.2f}"
    shot(desk, "22-dashboard-position")

    placed = place_from_the_form(desk, typed="AAP", symbol="AAPL", side="SELL", quantity=5)
    sold = Order.objects.get(side="SELL")
    assert f"Order #{sold.pk} placed: SELL 5 AAPL MKT DAY" in placed
    assert until(lambda: Position.objects.filter(closed_at__isnull=False).exists())
    desk.goto("/admin/dashboard/")
    assert "No open position." in desk.inner_text("#positions")
    realized = desk.inner_text("#realized-total")
    assert realized[0] in "+-" and realized[-3] == "."  # signed, two places
    shot(desk, "23-dashboard-closed")


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
