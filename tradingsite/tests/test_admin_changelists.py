"""Every change list costs the same number of queries with 1 row and with 20, and never counts
a big table in full."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from marketdata.tests.factories import CodeFactory
from strategies.tests.factories import StrategyFactory
from tradingsite.admin_tools import CappedCountPaginator
from tradingsite.testing.factories import (
    AgentMessageFactory,
    ExecutionFactory,
    MarketDataFactory,
    WorkflowMetricsFactory,
    make_decision,
    make_fill,
)
from workflows.tests.factories import WorkflowFactory

pytestmark = pytest.mark.django_db


def strategies(n):
    for _ in range(n):
        strategy = StrategyFactory(schedule_interval_minutes=15)
        strategy.codes.set([CodeFactory(), CodeFactory()])
        ExecutionFactory(strategy=strategy)


def decisions(n):
    for _ in range(n):
        decision = make_decision()
        make_fill(decision=decision, instrument=decision.code)


def fills(n):
    for _ in range(n):
        make_fill()


def executions(n):
    for _ in range(n):
        ExecutionFactory()


# (url, rows maker, queries whatever the number of rows; one of them reads whether trading
# is halted, for the header)
CASES = {
    "strategies": ("/admin/strategies/strategy/", strategies, 8),
    "decisions": ("/admin/strategies/decision/", decisions, 7),
    "workflows": ("/admin/workflows/workflow/", WorkflowFactory.create_batch, 6),
    "executions": ("/admin/workflows/workflowexecution/", executions, 7),
    "conversations": (
        "/admin/workflows/agentconversation/",
        AgentMessageFactory.create_batch,
        5,
    ),  # fmt: skip
    "metrics": ("/admin/workflows/workflowmetrics/", WorkflowMetricsFactory.create_batch, 7),
    "orders": ("/admin/orders/order/", fills, 6),
    "trades": ("/admin/orders/trade/", fills, 6),
    "positions": ("/admin/orders/position/", fills, 5),
    "codes": ("/admin/marketdata/code/", CodeFactory.create_batch, 8),
    "market data": ("/admin/marketdata/marketdata/", MarketDataFactory.create_batch, 6),
}


@pytest.mark.parametrize("rows", [1, 20])
@pytest.mark.parametrize("name", CASES)
def test_a_change_list_costs_the_same_queries_at_any_size(
    admin_client, django_assert_num_queries, name, rows
):
    url, make, queries = CASES[name]
    make(rows)
    with django_assert_num_queries(queries):
        response = admin_client.get(url, secure=True)
    assert response.status_code == 200
    assert 'id="result_list"' in response.content.decode()


def test_past_the_cap_the_count_stops_and_says_more_than(admin_client, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "count_limit", 5)
    for _ in range(7):
        ExecutionFactory()
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get("/admin/workflows/workflowexecution/", secure=True)
    page = response.content.decode()
    assert "more than 5 workflow executions" in page
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT 6" in sql for sql in counts), counts


@pytest.mark.parametrize(
    "url",
    [
        "/admin/orders/order/?created_at__year=9999",
        "/admin/strategies/decision/?created_at__year=9999&created_at__month=12",
        "/admin/workflows/workflowmetrics/?date__year=9999",
        "/admin/orders/trade/?entry_date__year=0",
        # Django's own drill-down, on an admin that is not the site's
        "/admin/django_celery_beat/periodictask/?start_time__year=9999",
        "/admin/django_celery_beat/periodictask/?start_time__year=" + "9" * 30,
    ],
)
def test_a_drill_down_to_a_year_no_date_reaches_is_a_bad_parameter(admin_client, url):
    response = admin_client.get(url, secure=True)
    assert response.status_code == 302 and response["Location"].endswith("?e=1")
    again = admin_client.get(response["Location"], secure=True)
    assert again.status_code == 200
    assert "Something’s wrong with your database installation" not in again.content.decode()
