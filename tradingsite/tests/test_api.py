"""What every API endpoint shares: authentication, permissions, throttling, error bodies, docs."""

import base64
import io
import re

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.urls import reverse
from rest_framework.authentication import TokenAuthentication as DRFTokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.throttling import UserRateThrottle

from marketdata.tests.factories import CodeFactory
from tradingsite.api.authentication import TokenAuthentication
from tradingsite.api.exceptions import api_exception_handler
from tradingsite.api.parsers import json_depth_refusal
from tradingsite.exceptions import ServiceUnavailable
from tradingsite.fast import _TokenRead
from tradingsite.testing.api import APITestCase, SecureAPIClient, assert_refused, results
from tradingsite.testing.factories import (
    AgentMessageFactory,
    ExecutionFactory,
    make_decision,
    make_fill,
)

pytestmark = pytest.mark.django_db

CODES = "/api/codes/"


def fields_of(instance):
    return {key: value for key, value in vars(instance).items() if key != "_state"}


def new_code():
    return {"symbol": "IBM", "conid": 8314}


class TestAuthentication(APITestCase):
    def test_a_token_made_by_drf_create_token_reads_and_staff_tokens_write(self, staff):
        out = io.StringIO()
        call_command("drf_create_token", staff.username, stdout=out)
        key = re.search(r"Generated token (\w+)", out.getvalue()).group(1)
        client = SecureAPIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        assert client.get(CODES).status_code == 200
        assert client.post(CODES, new_code(), format="json").status_code == 201

    def test_a_wrong_token_is_401(self):
        client = SecureAPIClient()
        client.credentials(HTTP_AUTHORIZATION="Token not-a-real-key")
        assert_refused(client.get(CODES), 401)

    def test_a_deactivated_users_token_is_401(self, staff):
        key = Token.objects.create(user=staff).key
        staff.is_active = False
        staff.save()
        client = SecureAPIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        response = client.get(CODES)
        assert_refused(response, 401)
        assert response.json()["detail"] == "User inactive or deleted."

    def test_a_deleted_token_is_401_at_once(self, staff):
        token = Token.objects.create(user=staff)
        client = SecureAPIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        assert client.get(CODES).status_code == 200
        token.delete()
        response = client.get(CODES)
        assert_refused(response, 401)
        assert response.json()["detail"] == "Invalid token."

    def test_a_token_and_its_user_are_read_in_one_query_as_drfs_own_read_them(
        self, staff, django_assert_num_queries
    ):
        staff.first_name = "Ada"
        staff.save()
        key = Token.objects.create(user=staff).key
        with django_assert_num_queries(1):
            user, token = TokenAuthentication().authenticate_credentials(key)
            assert token.user is user and user.auth_token is token
            assert user.is_staff and user.first_name == "Ada"
        expected_user, expected_token = DRFTokenAuthentication().authenticate_credentials(key)
        assert fields_of(user) == fields_of(expected_user)
        assert fields_of(token) == fields_of(expected_token)
        assert user._state.db == token._state.db == "default" and not user._state.adding

    def test_where_the_query_is_not_the_plain_one_drfs_own_read_answers(self, staff, monkeypatch):
        key = Token.objects.create(user=staff).key
        read = _TokenRead(Token, "default")
        read.usable = False  # as on SQLite, whose columns need converting
        monkeypatch.setattr(TokenAuthentication, "_reads", {(Token, "default"): read})
        monkeypatch.setattr(_TokenRead, "__call__", None)  # would fail if reached
        user, token = TokenAuthentication().authenticate_credentials(key)
        assert (user, token.key) == (staff, key)
        with pytest.raises(AuthenticationFailed, match="Invalid token"):
            TokenAuthentication().authenticate_credentials("not-a-real-key")

    def test_anonymous_requests_are_401_with_a_challenge(self, anonymous):
        response = anonymous.get(CODES)
        assert_refused(response, 401)
        assert response["WWW-Authenticate"] == "Token"

    def test_a_session_reads_and_writes_only_with_its_csrf_token(self, staff):
        client = SecureAPIClient(enforce_csrf_checks=True)
        client.force_login(staff)  # a real session, as after signing in to the admin
        assert client.get(CODES).status_code == 200
        refused = client.post(CODES, new_code(), format="json")
        assert_refused(refused, 403)
        assert "CSRF" in refused.json()["detail"]

        secret = "a" * 32
        client.cookies["csrftoken"] = secret
        allowed = client.post(
            CODES,
            new_code(),
            format="json",
            HTTP_X_CSRFTOKEN=secret,
            HTTP_REFERER="https://testserver/api/docs/",  # https: Django checks the origin
        )
        assert allowed.status_code == 201, allowed.content

    def test_a_readonly_user_reads_but_never_writes(self, reader, reader_client):
        assert reader.groups.filter(name="readonly").exists()
        code = CodeFactory()
        assert reader_client.get(CODES).status_code == 200
        assert_refused(reader_client.post(CODES, new_code(), format="json"), 403)
        assert_refused(reader_client.patch(f"{CODES}{code.pk}/", {"symbol": "X"}), 403)
        assert_refused(reader_client.delete(f"{CODES}{code.pk}/"), 403)

    def test_any_signed_in_non_staff_user_reads(self, django_user_model):
        client = SecureAPIClient()
        client.force_authenticate(django_user_model.objects.create_user("someone"))
        assert client.get(CODES).status_code == 200
        assert_refused(client.post(CODES, new_code(), format="json"), 403)


class TestThrottling(APITestCase):
    def test_a_user_past_the_rate_is_told_when_to_come_back(self, reader_client, monkeypatch):
        monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "3/min"})
        cache.clear()
        try:
            assert [reader_client.get(CODES).status_code for _ in range(3)] == [200] * 3
            response = reader_client.get(CODES)
            assert_refused(response, 429)
            assert 0 < int(response["Retry-After"]) <= 60
        finally:
            cache.clear()


class TestErrorBodies(APITestCase):
    def test_a_model_validation_error_is_a_400_naming_the_field(self):
        response = api_exception_handler(
            ValidationError({"stop_loss": "Must differ from current_price."}), {}
        )
        assert response.status_code == 400
        assert response.data == {
            "detail": "Invalid input: stop_loss.",
            "errors": {"stop_loss": ["Must differ from current_price."]},
        }

    def test_a_service_that_is_down_is_a_503_to_retry(self):
        response = api_exception_handler(
            ServiceUnavailable("The task queue cannot be reached (refused).", {"queue": "x"}), {}
        )
        assert (response.status_code, response["Retry-After"]) == (503, "30")
        assert response.data == {"detail": "The task queue cannot be reached (refused)."}

    def test_malformed_json_is_a_400(self, staff_client):
        response = staff_client.post(CODES, "{not json", content_type="application/json")
        assert_refused(response, 400)

    def test_json_nested_deeper_than_64_levels_is_a_400_naming_the_depth(self, staff_client):
        for body in ("[" * 2000 + "]" * 2000, '{"symbol": ' + "[" * 65 + "]" * 65 + "}"):
            response = staff_client.post(CODES, body, content_type="application/json")
            assert_refused(response, 400)
            assert response.json()["detail"] == (
                "JSON nested deeper than 64 levels (arrays and objects)."
            )
        at_the_limit = '{"symbol": ' + "[" * 63 + "]" * 63 + ', "x": "' + "[" * 99 + '"}'
        response = staff_client.post(CODES, at_the_limit, content_type="application/json")
        assert_refused(response, 400, "symbol")  # read, and refused for what it says
        assert json_depth_refusal("[" * 64 + "]" * 64) is None
        assert json_depth_refusal('["' + "[" * 99 + '", "\\\\", "]"]') is None
        assert json_depth_refusal('"' + '\\"' * 99 + "[" * 99) is None  # left to the parser

    def test_an_unknown_url_under_the_api_is_404(self, reader_client):
        assert reader_client.get("/api/codes/abc/").status_code == 404


def _cursor(text):
    return base64.b64encode(text.encode()).decode()


class TestCursors(APITestCase):
    """A cursor the site did not make is a 400 naming ``cursor``, on every cursor listing."""

    @pytest.fixture(params=["executions", "decisions", "orders", "conversation"])
    def listing(self, request):
        """The URL of a cursor-paginated listing with two rows, so that a page has a next."""
        if request.param == "conversation":
            message = AgentMessageFactory()
            AgentMessageFactory(workflow_execution=message.workflow_execution)
            return f"/api/executions/{message.workflow_execution_id}/conversation/"
        for _ in range(2):
            make_fill(decision=make_decision())
            ExecutionFactory()
        return f"/api/{request.param}/"

    @pytest.mark.parametrize(
        "cursor",
        [
            "abc",  # not base64 (its padding is missing)
            "w6k=",  # not ASCII once decoded
            _cursor("o=-1"),
            _cursor("r=yes"),
            _cursor("p=abc"),
            _cursor("p=2024-01-01T00:00:00-17:25"),  # an offset PostgreSQL refuses
            _cursor("p=2024-01-01T00:00:00%2B16:00"),
            _cursor("p=9999-12-31T23:00:00-15:00"),  # past year 9999 in UTC
            _cursor("p=10000-01-01T00:00:00Z"),
            _cursor("p=0000-01-01T00:00:00Z"),
            _cursor("p=1\x00"),
            _cursor("p=2024-02-30T00:00:00Z"),
        ],
    )
    def test_a_bad_cursor_is_a_400_naming_it(self, reader_client, listing, cursor):
        response = reader_client.get(listing, {"cursor": cursor})
        assert_refused(response, 400, "cursor")
        assert response.json()["errors"]["cursor"] == ["Invalid cursor"]

    @pytest.mark.parametrize(
        "position", ["2024-01-01T00:00:00-15:59", "2024-01-01T00:00:00%2B15:00", "2024-01-01"]
    )
    def test_a_date_time_cursor_of_an_offset_postgresql_takes_pages(
        self, reader_client, listing, position
    ):
        response = reader_client.get(listing, {"cursor": _cursor(f"p={position}")})
        if listing == "/api/executions/":  # by id, which a date-time is not
            assert_refused(response, 400, "cursor")
        else:
            assert response.status_code == 200, response.content

    def test_the_cursors_the_site_makes_still_walk_every_page(self, reader_client, listing):
        url, seen = f"{listing}?page_size=1", []
        while url:
            body = reader_client.get(url).json()
            seen += [row["id"] for row in body["results"]]
            url = body["next"]
        assert len(seen) == len(set(seen)) == 2
        previous = reader_client.get(f"{listing}?page_size=1").json()["next"]
        back = reader_client.get(reader_client.get(previous).json()["previous"]).json()
        assert [row["id"] for row in back["results"]] == seen[:1]


class TestDocs(APITestCase):
    def test_swagger_ui_is_served_from_this_site(self, reader_client):
        page = reader_client.get(reverse("api:docs"))
        assert page.status_code == 200
        html = page.content.decode()
        scripts = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert scripts and all(src.startswith("/") for src in scripts), scripts
        assert "/api/docs/assets/swagger-ui-dist/swagger-ui-bundle.js" in scripts
        for src in scripts:
            asset = reader_client.get(src)
            assert asset.status_code == 200, src
            assert b"".join(asset.streaming_content)

    def test_the_docs_and_schema_need_a_signed_in_user(self, anonymous):
        assert anonymous.get(reverse("api:docs")).status_code == 401
        assert anonymous.get(reverse("api:schema")).status_code == 401

    def test_no_asset_outside_swagger_ui_is_served(self, anonymous):
        assert (
            anonymous.get("/api/docs/assets/swagger-ui-dist/../../redoc/LICENSE").status_code == 404
        )


class TestAProgramHoldingOnlyAToken:
    """The issue's "done when", through documented endpoints alone: codes, a workflow from the
    two_indicator template, a strategy, a run followed to completion, and what it produced.

    A Celery worker is replaced by Celery's eager mode: the run endpoint queues the same task
    (``run_workflow``) after its transaction commits, and it runs in this process against
    the loopback IB gateway and the offline model. workflows/tests/test_celery.py runs it in a
    real worker.
    """

    @pytest.fixture
    def token_client(self, django_user_model):
        django_user_model.objects.create_user("robot", is_staff=True)
        out = io.StringIO()
        call_command("drf_create_token", "robot", stdout=out)
        client = SecureAPIClient()
        key = re.search(r"Generated token (\w+)", out.getvalue()).group(1)
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return client

    @pytest.fixture
    def eager_celery(self, monkeypatch, settings, tmp_path):
        from tradingsite.celery import app

        monkeypatch.setattr(app.conf, "task_always_eager", True)
        monkeypatch.setattr(app.conf, "task_eager_propagates", True)
        settings.MEDIA_ROOT = tmp_path  # the run's charts

    # Bars files on purpose: AAPL rises and MSFT falls, on every market date the suite runs on,
    # so the team buys one and sells the other and both orders reach the gateway.
    @pytest.mark.parametrize("gateway", [{"bars": {"AAPL": "up", "MSFT": "down"}}], indirect=True)
    def test_codes_workflow_strategy_run_and_its_results(
        self, token_client, gateway, eager_celery, django_capture_on_commit_callbacks
    ):
        api = token_client
        codes = []
        for symbol in ("AAPL", "MSFT"):
            response = api.post("/api/codes/resolve/", {"symbol": symbol}, format="json")
            assert response.status_code == 200, response.content
            codes.append(response.json())
        assert [c["symbol"] for c in codes] == ["AAPL", "MSFT"]
        assert codes[0]["conid"] == 265598  # IB's own contract id, as the gateway answers

        templates = results(api.get("/api/workflows/", {"type": "two_indicator"}))
        template = next(t for t in templates if t["name"] == "Two indicator (daily + weekly)")
        workflow = api.post(f"/api/workflows/{template['id']}/clone/").json()
        assert workflow["steps"] == template["steps"] and workflow["id"] != template["id"]

        response = api.post(
            "/api/strategies/",
            {"name": "Daily and weekly", "type": "two_indicator", "workflow_id": workflow["id"],
             "codes": [c["id"] for c in codes],
             "param": {"account_size": "50000", "allow_short": True}},
            format="json",
        )  # fmt: skip
        assert response.status_code == 201, response.content
        strategy = response.json()

        with django_capture_on_commit_callbacks() as queued:
            response = api.post(f"/api/strategies/{strategy['id']}/run/")
        assert response.status_code == 202, response.content
        execution_url = response["Location"]
        execution_id = response.json()["execution_id"]
        assert api.get(execution_url).json()["status"] == "pending"  # no worker has it yet

        for send_task in queued:  # the commit: the task goes to the (eager) worker
            send_task()
        seen = []
        while not seen or seen[-1]["status"] in ("pending", "running"):
            seen.append(api.get(execution_url).json())
            assert len(seen) < 50, seen[-1]
        execution = seen[-1]
        assert execution["status"] == "completed", execution["error_message"]
        assert execution["progress"]["percent"] == 100
        assert execution["progress"]["completed_symbols"] == 2
        assert execution["results"]["symbols_processed"] == 2

        decisions = results(api.get("/api/decisions/", {"strategy_id": strategy["id"]}))
        assert len(decisions) == execution["results"]["decisions_made"] == 2
        assert {d["code_id"] for d in decisions} == {c["id"] for c in codes}
        assert {d["workflow_execution_id"] for d in decisions} == {execution_id}

        assert {d["code_id"]: d["type"] for d in decisions} == {
            codes[0]["id"]: "buy",
            codes[1]["id"]: "sell",
        }
        orders = results(api.get("/api/orders/", {"strategy_id": strategy["id"], "role": "entry"}))
        assert len(orders) == execution["results"]["orders_placed"] == 2  # each a bracket's entry
        children = results(api.get("/api/orders/", {"strategy_id": strategy["id"]}))
        assert sorted(o["role"] for o in children) == [
            "entry", "entry", "stop_loss", "stop_loss", "take_profit", "take_profit",
        ]  # fmt: skip
        trading = {d["id"]: d for d in decisions}
        for order in orders:
            decision = trading[order["decision_id"]]
            assert order["strategy_id"] == strategy["id"]
            assert order["side"] == decision["type"].upper()
            assert order["price"] == decision["current_price"]
            assert order["ibkr_order_id"] is not None and order["trading_mode"] == "paper"

        conversation = results(api.get(f"{execution_url}conversation/", {"page_size": 500}))
        assert {"TechnicalAnalyst", "RiskManager", "Executor"} <= {
            m["agent_name"] for m in conversation
        }
        assert [m["timestamp"] for m in conversation] == sorted(
            m["timestamp"] for m in conversation
        )
        assert {m["workflow_execution_id"] for m in conversation} == {execution_id}
