"""The OpenAPI schema: generated without warnings, valid, and honoured by every endpoint.

Schemathesis generates requests for every operation from /api/schema/ (valid and invalid
ones, with a fixed seed and a bounded number of examples, and its coverage phase: the
boundary values the schema allows) and sends them to the WSGI application as a staff user: no
answer may be a 500, and every answer (status, content type, body) must be one the schema
documents. Some 4,600 requests, under a minute.

Beside it, values schemathesis does not think of (``tradingsite.testing.hostile``): NUL,
dates past the calendar, offsets PostgreSQL refuses, JSON nested too deep, in every query
parameter and every JSON field of a body.
"""

import io
import socket
from urllib.parse import urlencode

import pytest
import schemathesis
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from rest_framework.throttling import UserRateThrottle
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from orders.models import Position, TradingAction, TradingSession
from performance.services import performance_snapshot
from tradingsite.broker import reset_broker
from tradingsite.testing.api import SecureAPIClient
from tradingsite.testing.factories import (
    AgentMessageFactory,
    MarketDataFactory,
    WorkflowMetricsFactory,
    make_decision,
    make_fill,
)
from tradingsite.testing.hostile import JSON_TEXTS, QUERY_VALUES
from workflows.tests.test_backtest_api import probe_result

BASE_URL = "https://localhost"  # https: the site redirects plain http unless DEBUG
EXAMPLES_PER_OPERATION = 20
CONFIG = {
    "seed": 20251123,
    "generation": {"mode": "all", "deterministic": True, "database": "none"},
    "phases": {"coverage": {"enabled": True}},
    # The broker is down here: an operation that talks to it answers its documented 503 (and
    # status_code_conformance still refuses a 502 or 503 that an operation does not document).
    "checks": {"not_a_server_error": {"expected-statuses": ["2XX", "3XX", "4XX", "502", "503"]}},
}

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_the_schema_generates_without_warnings_and_validates(db):
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    schema = out.getvalue()
    for path in ("/api/orders/{id}/cancel/", "/api/executions/{id}/conversation/",
                 "/api/agents/performance/", "/api/workflows/{id}/revert/",
                 "/api/strategies/{id}/run/", "/api/workflows/{id}/run/",
                 "/api/executions/{id}/cancel/", "/api/codes/resolve/"):  # fmt: skip
        assert f"{path}:" in schema


@pytest.fixture
def staff_token(db, django_user_model):
    staff = django_user_model.objects.create_user("schemathesis", is_staff=True)
    return Token.objects.create(user=staff).key


@pytest.fixture
def wsgi_app():
    """tradingsite.wsgi's application without its start-up check of the database.

    As Django's test client does, requests leave the connection open: closing it at the end
    of a request would end the test's transaction.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def broker_down(settings):
    """No gateway listens: an order reaches the broker step and gets its documented 503 at once
    (orders/tests/test_api.py places real ones on the loopback gateway)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        settings.IBKR_HOST, settings.IBKR_PORT = "127.0.0.1", probe.getsockname()[1]
    settings.IBKR_CONNECT_ATTEMPTS = 1
    reset_broker()
    yield
    reset_broker()


@pytest.fixture
def stored_ids(db):
    """One stored row per resource, so that detail endpoints answer with bodies to check."""
    order = make_fill()
    decision = make_decision()
    message = AgentMessageFactory()
    return {
        "codes": order.instrument.pk,
        "orders": order.pk,
        "trades": order.trades.get().pk,
        "positions": Position.objects.get(instrument=order.instrument).pk,
        "decisions": decision.pk,
        "strategies": decision.strategy_id,
        "executions": message.workflow_execution_id,
        "workflows": message.workflow_execution.workflow_id,
        "workflow-metrics": WorkflowMetricsFactory().pk,
        "market-data": MarketDataFactory().pk,
        "performance": performance_snapshot(strategy=decision.strategy).pk,
        "backtests": probe_result().pk,
        "trading-actions": TradingAction.objects.create(kind="resume", user="fuzz").pk,
        "trading-sessions": TradingSession.objects.create(
            session_name="fuzz", trading_mode="paper", is_active=False
        ).pk,
    }


@pytest.fixture
def unthrottled(monkeypatch):
    """Thousands of requests a minute from one user: throttling has its own test."""
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": None})


@pytest.fixture
def api_schema(staff_token, wsgi_app, broker_down, stored_ids, unthrottled):
    return schemathesis.openapi.from_wsgi(
        "/api/schema/",
        wsgi_app,
        config=SchemathesisConfig.from_dict(CONFIG),
        headers={"Authorization": f"Token {staff_token}"},
        base_url=BASE_URL,
    )


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.mark.fuzz
@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_honours_the_schema(case, staff_token, stored_ids):
    generated = case.path_parameters.get("id") if case.path_parameters else None
    if isinstance(generated, int) and not isinstance(generated, bool) and generated % 2 == 0:
        # Half of the well-formed ids name a stored row (the rest are almost surely unknown).
        case.path_parameters["id"] = stored_ids[case.path.split("/")[2]]
    case.call_and_validate(
        base_url=BASE_URL, headers={"Authorization": f"Token {staff_token}"}, checks=CHECKS
    )


DEEP = "[" * 2000 + "]" * 2000


@pytest.fixture
def staff_api(staff_token):
    return SecureAPIClient(HTTP_AUTHORIZATION=f"Token {staff_token}")


@pytest.fixture
def openapi(staff_api):
    """The OpenAPI schema the site serves, as a dict."""
    return staff_api.get("/api/schema/", {"format": "json"}).json()


def operations(openapi):
    """(method, path, operation) of every operation of the schema."""
    for path, item in openapi["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def url_of(path, stored_ids):
    """``path`` with its ``{id}`` a stored row's."""
    return path.replace("{id}", str(stored_ids.get(path.split("/")[2], 1)))


def json_body(operation):
    """The JSON body schema of ``operation``, or None."""
    return operation.get("requestBody", {}).get("content", {}).get("application/json")


def test_json_nested_too_deep_is_a_400_naming_the_depth_on_every_operation_that_reads_json(
    staff_api, openapi, stored_ids, broker_down
):
    reading = [(method, path) for method, path, op in operations(openapi) if json_body(op)]
    assert len(reading) >= 14  # codes, orders, strategies, workflows and their actions
    for method, path in reading:
        response = staff_api.generic(
            method.upper(), url_of(path, stored_ids), DEEP, content_type="application/json"
        )
        assert response.status_code == 400, (method, path, response.content)
        assert "nested deeper than 64 levels" in response.json()["detail"], (method, path)


@pytest.mark.fuzz
def test_no_hostile_value_of_any_query_parameter_gives_a_500(
    staff_api, openapi, stored_ids, broker_down, unthrottled
):
    """Every query parameter of every operation (filters, cursor, page, page_size ...) with
    the values of ``tradingsite.testing.hostile``, one at a time."""
    failures, sent = [], 0
    for method, path, operation in operations(openapi):
        names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
        for name in names:
            for value in QUERY_VALUES:
                response = staff_api.generic(
                    method.upper(), f"{url_of(path, stored_ids)}?{urlencode({name: value})}"
                )
                sent += 1
                if response.status_code >= 500 and response.status_code not in (502, 503):
                    failures.append((method, path, name, value[:30], response.status_code))
    assert sent > 500 and not failures, failures


@pytest.mark.fuzz
def test_no_hostile_json_in_any_json_field_of_a_body_gives_a_500(
    staff_api, openapi, stored_ids, broker_down, unthrottled
):
    """Each object or array property of every JSON body with the JSON of
    ``tradingsite.testing.hostile``: too deep, NaN, past a float, past Python's integers, NUL."""
    failures, sent = [], 0
    for method, path, operation in operations(openapi):
        body = json_body(operation)
        if not body:
            continue
        schema = body["schema"]
        if "$ref" in schema:
            schema = openapi["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        fields = [name for name, field in schema.get("properties", {}).items()
                  if field.get("type") in ("object", "array")]  # fmt: skip
        for name in fields:
            for text in JSON_TEXTS:
                response = staff_api.generic(
                    method.upper(), url_of(path, stored_ids), f'{{"{name}": {text}}}',
                    content_type="application/json",
                )  # fmt: skip
                sent += 1
                if response.status_code != 400:
                    failures.append((method, path, name, text[:30], response.status_code))
    assert sent >= 50 and not failures, failures
