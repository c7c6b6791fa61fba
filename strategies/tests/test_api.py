from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from django.urls import reverse
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from marketdata.tests.factories import CodeFactory
from strategies.api.filters import DecisionFilter, StrategyFilter
from strategies.models import Decision, Strategy
from strategies.tests.factories import StrategyFactory
from tradingsite.testing.api import APIViewTestCases, assert_refused, ids
from tradingsite.testing.factories import ExecutionFactory, make_decision
from workflows.models import Workflow, WorkflowExecution
from workflows.tests.factories import WorkflowFactory

STRATEGY_FIELDS = {
    "id", "name", "type", "param", "workflow_id", "codes", "active",
    "schedule_interval_minutes", "schedule_crontab", "created_at", "updated_at",
}  # fmt: skip
DECISION_FIELDS = {
    "id", "code_id", "strategy_id", "type", "current_price", "price_at", "proposed_price",
    "target_price", "stop_loss", "profit_margin", "r_coefficient", "analysis_text", "created_at",
    "workflow_execution_id", "reward_risk", "status", "error_message", "confidence", "llm_model",
    "execution_time_ms",
}  # fmt: skip


def action_url(name, strategy):
    return reverse(f"api:strategy-{name}", kwargs={"pk": getattr(strategy, "pk", strategy)})


PARAM = {"period_1": "1 Y", "bar_1": "1 day", "period_2": "2 Y", "bar_2": "1 week"}


class TestStrategies(APIViewTestCases.ModelViewSet):
    basename = "strategy"
    model = Strategy
    expected_fields = STRATEGY_FIELDS
    list_queries = 3  # count, page, the page's codes
    filterset = StrategyFilter
    filter_ignore = {"schedule_interval_minutes", "schedule_crontab", "periodic_task"}
    invalid_create_data = [
        ({"type": "martingale"}, "type"),
        ({"param": ["not", "an", "object"]}, "param"),
        ({"param": {**PARAM, "bar_1": "1 fortnight"}}, "param"),
        ({"param": {"bar_1": "1 day\x00"}}, "param"),
        ({"param": {**PARAM, "bar_2": ["1 week"]}}, "param"),
        ({"param": {**PARAM, "period_1": {"years": 1}}}, "param"),
        ({"param": {**PARAM, "bar_1": 1}}, "param"),
        ({"workflow_id": 2_000_000_000}, "workflow_id"),
        ({"codes": [2_000_000_000]}, "codes"),
        ({"codes": "1"}, "codes"),
        ({"codes": []}, "codes"),
        ({"active": "perhaps"}, "active"),
        ({"schedule_interval_minutes": 0}, "schedule_interval_minutes"),
        ({"schedule_crontab": "61 * * * *"}, "schedule_crontab"),
        ({"schedule_crontab": "-1 * * * *"}, "schedule_crontab"),
        ({"schedule_crontab": "1,,2 * * * *"}, "schedule_crontab"),
        ({"schedule_crontab": "0 0 * * " + ",".join("12345" * 7)}, "schedule_crontab"),
        ({"schedule_crontab": "0 0 1 " + ",".join("123456" * 6) + " *"}, "schedule_crontab"),
        ({"schedule_interval_minutes": 525_601}, "schedule_interval_minutes"),
        ({"schedule_interval_minutes": 5, "schedule_crontab": "0 * * * *"}, "schedule_crontab"),
    ]
    invalid_update_data = [
        ({"param": {"period_1": "a year"}}, "param"),
        ({"name": ""}, "name"),
        ({"workflow_id": "x"}, "workflow_id"),
        ({"codes": []}, "codes"),
    ]

    def make(self):
        strategy = StrategyFactory()
        strategy.codes.set([CodeFactory(), CodeFactory()])
        return strategy

    def test_a_taken_name_is_a_400_naming_the_strategy_that_has_it(self, staff_client):
        taken = StrategyFactory(name="Swing")
        response = staff_client.post(self.list_url(), self.create_data(), format="json")
        assert_refused(response, 400, "name")
        assert response.json()["errors"]["name"] == [
            f"Strategy #{taken.pk} is named 'Swing' already; names are unique."
        ]
        other = self.make()
        response = staff_client.patch(self.detail_url(other), {"name": "Swing"}, format="json")
        assert_refused(response, 400, "name")
        assert Strategy.objects.filter(name="Swing").count() == 1

    def test_a_strategy_without_codes_is_refused_when_created_or_changed(self, staff_client):
        reason = ["A strategy trades at least one code: choose one or more."]
        data = self.create_data()
        for body in ({**data, "codes": []}, {k: v for k, v in data.items() if k != "codes"}):
            response = staff_client.post(self.list_url(), body, format="json")
            assert_refused(response, 400, "codes")
            assert response.json()["errors"]["codes"] == reason
        assert not Strategy.objects.exists()
        strategy = self.make()
        held = set(strategy.codes.all())
        for method in (staff_client.patch, staff_client.put):
            body = {**self.create_data(), "name": "Emptied", "codes": []}
            response = method(self.detail_url(strategy), body, format="json")
            assert_refused(response, 400, "codes")
            assert response.json()["errors"]["codes"] == reason
        strategy.refresh_from_db()
        assert strategy.name != "Emptied" and set(strategy.codes.all()) == held

    def test_the_type_follows_the_workflow_or_is_refused(self, staff_client):
        data = self.create_data()
        workflow = Workflow.objects.get(pk=data["workflow_id"])  # a two_indicator workflow
        response = staff_client.post(
            self.list_url(), {**data, "type": "three_indicator"}, format="json"
        )
        assert_refused(response, 400, "type")
        assert response.json()["errors"]["type"] == [
            f"The workflow {workflow.name!r} is of type 'two_indicator': the strategy's type "
            "follows its workflow's (leave it out, or give that one)."
        ]
        assert not Strategy.objects.filter(name=data["name"]).exists()
        del data["type"]
        response = staff_client.post(self.list_url(), data, format="json")
        assert response.status_code == 201, response.content
        assert response.json()["type"] == "two_indicator"

    @pytest.mark.parametrize(
        ("param", "reason"),
        [
            ({"period_1": "100 Y"}, "'100 Y' is longer than IB's history (30 Y at most)."),
            ({"period_1": "1 Y", "bar_1": "1 min"},
             "IB gives '1 Y' of history in bars of '1 day' or longer, not '1 min'."),
        ],
    )  # fmt: skip
    def test_a_history_ib_would_refuse_is_a_400_naming_the_parameter(
        self, staff_client, param, reason
    ):
        data = {**self.create_data(), "param": param}
        response = staff_client.post(self.list_url(), data, format="json")
        assert_refused(response, 400, "param")
        assert response.json()["errors"]["param"] == {"period_1": [reason]}
        assert not Strategy.objects.exists()

    def test_param_sent_as_a_form_field_nested_too_deep_is_refused_naming_it(self, staff_client):
        data = {**self.create_data(), "param": '{"x": ' + "[" * 2000 + "]" * 2000 + "}"}
        for content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            if content_type.startswith("multipart"):
                response = staff_client.post(self.list_url(), data, format="multipart")
            else:
                response = staff_client.post(
                    self.list_url(), urlencode(data, doseq=True), content_type=content_type
                )
            assert_refused(response, 400, "param")
            assert response.json()["errors"]["param"] == [
                "JSON nested deeper than 64 levels (arrays and objects)."
            ]
        assert not Strategy.objects.filter(name="Swing").exists()

    def create_data(self):
        workflow = WorkflowFactory()
        codes = [CodeFactory().pk, CodeFactory().pk]
        return {
            "name": "Swing",
            "type": "two_indicator",
            "param": {"period_1": "6 M"},
            "workflow_id": workflow.pk,
            "codes": codes,
            "active": True,
            "schedule_interval_minutes": 15,
        }

    def update_data(self, obj):
        return {"name": "Swing weekly", "param": {**PARAM, "period_1": "1 M", "bar_1": "1 hour"},
                "codes": [CodeFactory().pk]}  # fmt: skip

    def test_param_problems_name_each_parameter(self, staff_client):
        workflow = WorkflowFactory(default_params={})
        response = staff_client.post(
            self.list_url(),
            {"name": "S", "workflow_id": workflow.pk, "param": {"bar_1": "x"}},
            format="json",
        )
        assert_refused(response, 400, "param")
        problems = response.json()["errors"]["param"]
        assert problems["bar_1"][0].startswith("'x' is not an IB bar size")
        assert problems["period_2"] == ["is required by the workflow"]

    def test_risk_settings_the_gate_could_not_use_are_refused_naming_each(self, staff_client):
        risk = {
            "account_size": "1e400",
            "risk_per_trade": "-0.5",
            "max_open_positions": "x",
            "max_orders_per_day": 2.5,
            "min_r_coefficient": "NaN",
            "min_profit_margin": 0,
        }
        response = staff_client.post(
            self.list_url(),
            {"name": "S", "type": "two_indicator", "param": {**PARAM, **risk}},
            format="json",
        )  # fmt: skip
        assert_refused(response, 400, "param")
        assert response.json()["errors"]["param"] == {
            "account_size": ["must be at most 1000000000000"],
            "risk_per_trade": ["must be at least 0.0001"],
            "max_open_positions": ["'x' is not a number"],
            "max_orders_per_day": ["2.5 is not a whole number"],
            "min_r_coefficient": ["must be a finite number"],
        }  # a margin of 0 is allowed: the gate then only weighs reward against risk
        assert not Strategy.objects.exists()

    def test_a_value_of_the_wrong_json_type_is_named_with_the_reason(self, staff_client):
        param = {**PARAM, "bar_2": ["1 week"], "period_1": None}
        response = staff_client.post(
            self.list_url(), {"name": "S", "type": "two_indicator", "param": param}, format="json"
        )
        assert_refused(response, 400, "param")
        problems = response.json()["errors"]["param"]
        assert problems["bar_2"][0].startswith("must be a string, an IB bar size")
        assert problems["period_1"][0].startswith("must be a string, an IB duration")

    def test_a_number_jsonb_cannot_store_is_refused(self, staff_client):
        body = '{"name": "S", "type": "two_indicator", "param": {"account_size": 1e999}}'
        response = staff_client.post(self.list_url(), body, content_type="application/json")
        assert_refused(response, 400, "param")
        assert not Strategy.objects.exists()

    def test_pause_and_resume(self, staff_client, reader_client):
        strategy = self.make()
        pause = action_url("pause", strategy)
        assert_refused(reader_client.post(pause), 403)
        response = staff_client.post(pause)
        assert response.status_code == 200, response.content
        assert response.json()["active"] is False
        assert Strategy.objects.get(pk=strategy.pk).active is False
        response = staff_client.post(action_url("resume", strategy))
        assert response.json()["active"] is True
        assert Strategy.objects.get(pk=strategy.pk).active is True
        assert_refused(staff_client.post(action_url("pause", 2_000_000_000)), 404)

    def test_clone_is_a_paused_copy_with_the_same_codes_and_schedule(
        self, staff_client, reader_client
    ):
        strategy = self.make()
        strategy.codes.set([CodeFactory(symbol="AAPL"), CodeFactory(symbol="MSFT")])
        clone = action_url("clone", strategy)
        assert_refused(reader_client.post(clone), 403)
        response = staff_client.post(clone)
        assert response.status_code == 201, response.content
        copy = response.json()
        assert copy["id"] != strategy.pk
        assert (copy["name"], copy["active"], copy["param"]) == (
            f"{strategy.name} (Copy)",
            False,
            strategy.param,
        )
        stored = Strategy.objects.get(pk=copy["id"])
        assert sorted(stored.codes.values_list("symbol", flat=True)) == ["AAPL", "MSFT"]
        assert stored.schedule_interval_minutes == strategy.schedule_interval_minutes
        assert_refused(staff_client.post(action_url("clone", 2_000_000_000)), 404)

    def test_a_crontab_beat_cannot_store_is_named_with_the_reason(self, staff_client):
        data = {**self.create_data(), "schedule_interval_minutes": None,
                "schedule_crontab": "0 0 * * " + ",".join("12345" * 7)}  # fmt: skip
        response = staff_client.post(self.list_url(), data, format="json")
        assert_refused(response, 400, "schedule_crontab")
        assert response.json()["errors"]["schedule_crontab"] == [
            "The day_of_week field is longer than 64 characters."
        ]
        assert not PeriodicTask.objects.filter(task="workflows.tasks.run_workflow").exists()

    def test_duplicate_beat_schedules_are_shared_not_a_crash(self, staff_client):
        # Beat's tables have no unique constraint: its admin or two saves at once make twins.
        oldest = IntervalSchedule.objects.create(every=7, period=IntervalSchedule.MINUTES)
        IntervalSchedule.objects.create(every=7, period=IntervalSchedule.MINUTES)
        midnight = {"minute": "0", "hour": "0", "day_of_month": "*", "month_of_year": "*",
                    "day_of_week": "*", "timezone": "UTC"}  # fmt: skip
        oldest_crontab = CrontabSchedule.objects.create(**midnight)
        CrontabSchedule.objects.create(**midnight)
        every_seven = {**self.create_data(), "schedule_interval_minutes": 7}
        response = staff_client.post(self.list_url(), every_seven, format="json")
        assert response.status_code == 201, response.content
        at_midnight = {**self.create_data(), "name": "Nightly", "schedule_interval_minutes": None,
                       "schedule_crontab": "0 0 * * *"}  # fmt: skip
        response = staff_client.post(self.list_url(), at_midnight, format="json")
        assert response.status_code == 201, response.content
        tasks = PeriodicTask.objects.filter(task="workflows.tasks.run_workflow")
        assert {(task.interval_id, task.crontab_id) for task in tasks} == {
            (oldest.pk, None), (None, oldest_crontab.pk)
        }  # fmt: skip

    def test_a_strategy_its_workflow_no_longer_fits_can_be_paused_not_resumed(self, staff_client):
        workflow = WorkflowFactory()
        strategy = StrategyFactory(workflow=workflow, param={"period_1": "1 Y"})
        scheduled = staff_client.patch(self.detail_url(strategy), {"schedule_interval_minutes": 5},
                                       format="json")  # fmt: skip
        assert scheduled.status_code == 200, scheduled.content
        workflow.default_params = {}  # period_1 ... bar_2 are now left to strategies
        workflow.save()
        response = staff_client.post(action_url("pause", strategy))
        assert response.status_code == 200, response.content
        assert response.json()["active"] is False
        strategy.refresh_from_db()
        assert not strategy.active and not strategy.periodic_task.enabled
        response = staff_client.post(action_url("resume", strategy))
        assert_refused(response, 400, "param")
        assert response.json()["errors"]["param"]["bar_1"] == ["is required by the workflow"]
        strategy.refresh_from_db()
        assert not strategy.active and not strategy.periodic_task.enabled
        response = staff_client.patch(self.detail_url(strategy), {"active": False}, format="json")
        assert response.status_code == 200, response.content

    def test_run_queues_an_execution_and_answers_202(self, staff_client, reader_client):
        strategy = self.make()
        run = action_url("run", strategy)
        assert_refused(reader_client.post(run), 403)
        assert not WorkflowExecution.objects.exists()

        response = staff_client.post(run)
        assert response.status_code == 202, response.content
        started = response.json()
        assert set(started) == {"execution_id", "task_id", "status"}
        assert started["status"] == "pending" and started["task_id"]
        execution = staff_client.get(response["Location"]).json()
        assert execution["id"] == started["execution_id"]
        assert (execution["strategy_id"], execution["workflow_id"]) == (strategy.pk, None)
        assert (execution["task_id"], execution["status"]) == (started["task_id"], "pending")
        assert execution["results"] == {"dry_run": False}

        dry = staff_client.post(run, {"dry_run": True}, format="json").json()
        assert WorkflowExecution.objects.get(pk=dry["execution_id"]).results == {"dry_run": True}
        assert_refused(staff_client.post(run, {"dry_run": "perhaps"}, format="json"), 400,
                       "dry_run")  # fmt: skip
        assert_refused(staff_client.post(action_url("run", 2_000_000_000)), 404)
        assert WorkflowExecution.objects.count() == 2

    def test_a_strategy_whose_param_no_longer_suits_its_workflow_does_not_run(self, staff_client):
        workflow = WorkflowFactory(default_params={})  # period_1 ... bar_2 left to strategies
        strategy = StrategyFactory(workflow=workflow, param={"period_1": "1 Y"})
        response = staff_client.post(action_url("run", strategy))
        assert_refused(response, 400, "param")
        assert response.json()["errors"]["param"]["bar_1"] == ["is required by the workflow"]
        assert not WorkflowExecution.objects.exists()

    def test_a_strategy_with_decisions_is_kept(self, staff_client):
        strategy = make_decision().strategy
        assert_refused(staff_client.delete(self.detail_url(strategy)), 400, "strategy")
        assert Strategy.objects.filter(pk=strategy.pk).exists()

    def test_filters(self, reader_client):
        workflow = WorkflowFactory()
        code = CodeFactory()
        a = StrategyFactory(name="Alpha swing", workflow=workflow)
        a.codes.set([code])
        b = StrategyFactory(name="Beta", type="three_indicator", active=False)
        b.param = {**PARAM, "period_3": "5 Y", "bar_3": "1 month"}
        b.save()
        get = lambda **query: set(ids(reader_client.get(self.list_url(), query)))  # noqa: E731
        assert get(workflow_id=workflow.pk) == {a.pk}
        assert get(code_id=code.pk) == {a.pk}
        assert get(active="false") == {b.pk}
        assert get(type="three_indicator") == {b.pk}
        assert get(name="swing") == {a.pk}


class TestDecisions(APIViewTestCases.ReadOnlyViewSet):
    basename = "decision"
    model = Decision
    expected_fields = DECISION_FIELDS
    list_queries = 1  # cursor pagination counts nothing
    filterset = DecisionFilter
    filter_ignore = {
        "current_price", "proposed_price", "target_price", "stop_loss", "profit_margin",
        "r_coefficient", "error_message", "confidence", "execution_time_ms",
    }  # fmt: skip

    def make(self):
        return make_decision()

    def test_the_audit_of_a_decision_and_its_filters(self, reader_client):
        decided = make_decision(confidence="0.85", llm_model="llama3.1", execution_time_ms=1234)
        unreadable = make_decision(
            status="parsing_error", error_message="confidence: Input should be less than or "
            "equal to 1", llm_model="llama3.1",
        )  # fmt: skip
        body = reader_client.get(self.detail_url(decided)).json()
        assert (body["status"], body["confidence"], body["llm_model"]) == (
            "success", "0.85", "llama3.1",
        )  # fmt: skip
        assert (body["execution_time_ms"], body["error_message"]) == (1234, None)
        listed = reader_client.get(self.list_url(), {"status": "parsing_error"}).json()
        assert [row["id"] for row in listed["results"]] == [unreadable.pk]
        assert listed["results"][0]["error_message"].startswith("confidence: Input should")
        listed = reader_client.get(self.list_url(), {"llm_model": "llama3.1"}).json()
        assert {row["id"] for row in listed["results"]} == {decided.pk, unreadable.pk}
        refused = reader_client.get(self.list_url(), {"status": "shaky"})
        assert refused.status_code == 400 and "status" in refused.json()["errors"]

    def test_a_decision_as_stored(self, reader_client):
        decision = make_decision(current_price="100", target_price="110", stop_loss="95")
        body = reader_client.get(self.detail_url(decision)).json()
        assert body["r_coefficient"] == "-2.000000"  # (110 - 100) / (95 - 100)
        assert body["reward_risk"] == "2.000000"  # the same, positive for a sound long
        assert body["profit_margin"] == "0.100000"
        assert (body["code_id"], body["strategy_id"]) == (decision.code_id, decision.strategy_id)

    def test_filters_by_code_strategy_type_and_created_range(self, reader_client):
        strategy = StrategyFactory()
        code = CodeFactory()
        execution = ExecutionFactory(strategy=strategy)
        at = lambda day: datetime(2025, 3, day, 12, tzinfo=UTC)  # noqa: E731
        early = make_decision(code=code, strategy=strategy, created_at=at(1))
        middle = make_decision(
            code=code, strategy=strategy, type="sell", target_price="90", stop_loss="105",
            created_at=at(5), workflow_execution=execution,
        )  # fmt: skip
        late = make_decision(strategy=strategy, type="hold", created_at=at(9))
        other = make_decision(code=code, created_at=at(5))
        get = lambda **query: ids(reader_client.get(self.list_url(), query))  # noqa: E731
        assert get(strategy_id=strategy.pk) == [late.pk, middle.pk, early.pk]
        assert get(code_id=code.pk) == [other.pk, middle.pk, early.pk]
        assert get(type="sell") == [middle.pk]
        assert get(workflow_execution_id=execution.pk) == [middle.pk]
        assert get(
            strategy_id=strategy.pk,
            created_after="2025-03-02T00:00:00Z",
            created_before="2025-03-09T12:00:00Z",
        ) == [late.pk, middle.pk]
        assert get(strategy_id=strategy.pk, created_before="2025-03-05") == [early.pk]  # midnight
        response = reader_client.get(self.list_url(), {"created_after": "03/02/2025"})
        assert_refused(response, 400, "created_after")

    def test_the_cursor_walks_every_page_once(self, reader_client):
        made = [make_decision().pk for _ in range(5)]
        seen, url = [], self.list_url() + "?page_size=2"
        while url:
            body = reader_client.get(url).json()
            seen += [row["id"] for row in body["results"]]
            url = body["next"]
        assert seen == sorted(made, reverse=True)
