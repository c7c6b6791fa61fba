"""The admin in a real browser: Playwright driving Debian's Chromium (/usr/bin/chromium,
headless) against the live test server, with a real Celery worker running the strategy.

Screenshots of each page are kept in var/screenshots/ (see the README).
"""

import os
import re
from pathlib import Path

import pytest
from django.conf import settings

from marketdata.services import code_resolve
from marketdata.tests.factories import cache_run_bars
from orders.models import Order
from strategies.models import Decision, Strategy
from workflows.models import Workflow, WorkflowExecution
from workflows.services import workflow_create, workflow_update
from workflows.templates import TEMPLATES

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
PASSWORD = "pw-admin-123"  # the conftest's admin_user

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed"),
]


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread; the ORM calls of the
    # tests and their fixtures are still plain synchronous code.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            yield browser
            browser.close()


def logged_in_tab(chromium, live_server, admin_user, settings, viewport):
    """A browser tab on the live server, logged in as the admin.

    The test settings redirect plain HTTP to HTTPS; the tab says it came through an HTTPS
    proxy, as the site sees requests behind one in production (TRUST_X_FORWARDED_PROTO),
    and the proxy's plain-HTTP origin is trusted for CSRF as a deployment would list it.
    """
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.CSRF_TRUSTED_ORIGINS = [live_server.url]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = chromium.new_context(
        base_url=live_server.url,
        extra_http_headers={"X-Forwarded-Proto": "https"},
        viewport=viewport,
    )
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    tab.goto("/admin/login/")
    tab.fill("#id_username", admin_user.username)
    tab.fill("#id_password", PASSWORD)
    tab.click("input[type=submit]")
    tab.wait_for_selector("#site-name")
    assert "Site administration" in tab.content()
    return context, tab


@pytest.fixture
def page(chromium, live_server, admin_user, settings):
    context, tab = logged_in_tab(
        chromium, live_server, admin_user, settings, {"width": 1400, "height": 1000}
    )
    yield tab
    context.close()


def shot(tab, name):
    tab.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def resolve_at_the_gateway(symbols, gateway):
    """Codes resolved at the worker's gateway, with rising bars cached for the run.

    In a thread of its own: ib_insync runs an event loop, and this thread's belongs to
    Playwright."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    from tradingsite.broker import reset_broker

    def resolve():
        try:
            for symbol in symbols:
                cache_run_bars(code_resolve(symbol=symbol), gateway=gateway)
        finally:
            reset_broker()
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(resolve).result()


def two_indicator_workflow():
    template = TEMPLATES["two_indicator"]
    return Workflow.objects.filter(name=template["name"]).first() or workflow_create(
        name=template["name"], type="two_indicator", steps=template["steps"],
        default_params=template["default_params"], description=template["description"],
    )  # fmt: skip


def pick_code(tab, typed, symbol):
    """Add a code in the strategy's codes multi-select (select2), searched as typed."""
    tab.click(".field-traded_codes .select2-selection")
    tab.fill(".field-traded_codes .select2-search__field", typed)
    tab.click(f".select2-results__option >> text=/^{symbol} /")


def test_a_strategy_made_in_the_browser_runs_and_its_decision_and_order_are_found(
    page, worker_gateway
):
    workflow = two_indicator_workflow()
    resolve_at_the_gateway(["AAPL", "MSFT"], worker_gateway)

    page.goto("/admin/strategies/strategy/add/")
    page.fill("#id_name", "Browser trend")
    page.select_option("#id_type", "two_indicator")
    page.select_option("#id_workflow", str(workflow.pk))
    pick_code(page, "AAP", "AAPL")
    pick_code(page, "MSF", "MSFT")
    shot(page, "01-strategy-add")
    page.click("input[name=_save]")
    page.wait_for_selector("ul.messagelist")
    assert "was added successfully" in page.inner_text("ul.messagelist")
    assert "AAPL, MSFT" in page.inner_text("#result_list")
    shot(page, "02-strategy-list")

    page.click("#result_list a >> text=Browser trend")
    page.click("button.object-action >> text=Run now")
    page.wait_for_url(re.compile(r"/admin/workflows/workflowexecution/\d+/change/"))
    shot(page, "03-execution-started")
    # The progress bar refreshes itself and the page reloads when the run ends.
    page.wait_for_selector(".field-status_badge .status-completed", timeout=60_000)
    execution = WorkflowExecution.objects.get(strategy__name="Browser trend")
    assert execution.status == "completed", execution.error_message
    assert "2 codes processed, 2 decisions, 2 orders" in page.inner_text(".field-results_summary")
    assert page.inner_text(".exec-progress .percent") == "100%"
    charts = page.locator("figure.chart img")
    assert charts.count() == 4  # two timeframes of each code
    for n in range(4):
        charts.nth(n).scroll_into_view_if_needed()
    page.wait_for_function(
        "Array.from(document.querySelectorAll('figure.chart img'))"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )
    shot(page, "04-execution-completed")

    page.click("a >> text=Open the transcript")
    page.wait_for_selector(".transcript .message")
    transcript = page.inner_text("#content-main")
    for agent in ("TechnicalAnalyst", "RiskManager", "Executor"):
        assert agent in transcript
    assert re.search(r"\d+ tokens", transcript)
    shot(page, "05-transcript")

    page.go_back()
    decision = Decision.objects.get(workflow_execution=execution, code__symbol="AAPL")
    order = Order.objects.get(decision=decision, parent_order__isnull=True)  # the entry
    page.click(".field-decisions a >> text=/^buy AAPL @/")
    page.wait_for_url(f"**/admin/strategies/decision/{decision.pk}/change/")
    shot(page, "06-decision")
    page.click(f"a >> text=order #{order.pk}")
    page.wait_for_url(f"**/admin/orders/order/{order.pk}/change/")
    content = page.inner_text("#content")
    assert "Paper trading" in content and "BUY" in content
    shot(page, "07-order")

    page.goto("/admin/dashboard/")
    page.wait_for_selector("canvas[data-chart-id][data-drawn=true]")
    # The strategy's performance: its equity curve and drawdown drawn by Chart.js.
    strategy = Strategy.objects.get(name="Browser trend")
    page.wait_for_selector(f"canvas[data-equity-id='equity-{strategy.pk}'][data-drawn=true]")
    page.wait_for_selector(f"canvas[data-drawdown-id='equity-{strategy.pk}'][data-drawn=true]")
    assert page.inner_text("#executions-today") == "1"
    assert page.inner_text("#success-rate") == "100%"
    shot(page, "08-dashboard")
    assert Strategy.objects.get(name="Browser trend").codes.count() == 2


def test_an_invalid_workflow_edit_shows_the_message_and_a_version_is_reverted(page):
    steps = TEMPLATES["two_indicator"]["steps"]
    workflow = workflow_create(
        name="Browser workflow",
        type="two_indicator",
        steps=steps,
        default_params=TEMPLATES["two_indicator"]["default_params"],
    )
    workflow_update(workflow=workflow, steps=steps[:6], note="Without order")

    page.goto(f"/admin/workflows/workflow/{workflow.pk}/change/")
    page.fill(
        "#id_steps", '[{"type": "fetch_data", "config": {"period": "1 year", "bar": "1 day"}}]'
    )
    page.click("input[name=_save]")
    errors = page.inner_text(".field-steps .errorlist")
    assert "step 1 (fetch_data): period: '1 year' is not an IB duration" in errors
    assert "needs an ai_analyze, autogen_team or decide step" in errors
    shot(page, "09-workflow-invalid")

    page.goto(f"/admin/workflows/workflow/{workflow.pk}/change/")
    assert "Without order" in page.inner_text(".field-history")
    page.click(".field-history a >> text=v2")
    diff = page.inner_text("table.steps-diff")
    assert "place_order\tremoved" in diff and "wait\tremoved" in diff
    shot(page, "10-workflow-diff")
    page.goto(f"/admin/workflows/workflow/{workflow.pk}/versions/1/")
    page.click("input[value='Revert to version 1']")
    page.wait_for_selector("ul.messagelist")
    assert "to the steps of v1, saved as v3" in page.inner_text("ul.messagelist")
    assert "v3 (current)" in page.inner_text(".field-history")
    shot(page, "11-workflow-reverted")
    workflow.refresh_from_db()
    assert workflow.steps == steps
