from datetime import UTC, date, datetime, timedelta

from django.urls import reverse

from marketdata.tests.factories import CodeFactory
from strategies.tests.factories import StrategyFactory
from tradingsite.testing.api import APITestCase, APIViewTestCases, assert_refused, ids, results
from tradingsite.testing.factories import (
    AgentMessageFactory,
    ExecutionFactory,
    WorkflowMetricsFactory,
    make_decision,
)
from workflows.api.filters import ExecutionFilter, WorkflowFilter, WorkflowMetricsFilter
from workflows.models import Workflow, WorkflowExecution, WorkflowMetrics
from workflows.services import workflow_create, workflow_update
from workflows.templates import TEMPLATES

TWO = TEMPLATES["two_indicator"]
WORKFLOW_FIELDS = {
    "id", "name", "type", "steps", "default_params", "description", "current_version_id",
    "current_version_number", "created_at", "updated_at",
}  # fmt: skip
EXECUTION_FIELDS = {
    "id", "workflow_id", "strategy_id", "task_id", "status", "started_at", "completed_at",
    "results", "error_message", "progress", "created_at", "partial", "failed_codes",
}  # fmt: skip
MESSAGE_FIELDS = {
    "id", "workflow_execution_id", "agent_name", "message_type", "message_content", "timestamp",
    "tokens_used", "llm_model",
}  # fmt: skip


def url(name, obj):
    return reverse(f"api:{name}", kwargs={"pk": getattr(obj, "pk", obj)})


def two_indicator(name="Swing"):
    return workflow_create(
        name=name, type="two_indicator", steps=TWO["steps"], default_params=TWO["default_params"]
    )


class TestWorkflows(APIViewTestCases.ModelViewSet):
    basename = "workflow"
    model = Workflow
    expected_fields = WORKFLOW_FIELDS
    list_queries = 2
    filterset = WorkflowFilter
    filter_ignore = {"current_version"}
    invalid_create_data = [
        ({"type": "grid"}, "type"),
        ({"name": ""}, "name"),
        ({"steps": {"type": "fetch_data"}}, "steps"),
        ({"steps": [{"type": "teleport", "config": {}}]}, "steps"),
        ({"steps": [{"type": "fetch_data", "config": {"period": "1 Y", "bar": ["x"]}}]}, "steps"),
        ({"steps": [{"type": "fetch_data", "config": {"period": {}, "bar": "1 day"}}]}, "steps"),
        ({"steps": [{"type": "place_order", "config": {"tif": ["DAY"]}}]}, "steps"),
        ({"default_params": "period_1=1 Y"}, "default_params"),
        ({"default_params": {"period_1": "forever"}}, "default_params"),
        ({"default_params": {"risk_per_trade": 2}}, "default_params"),
        ({"description": "nul \x00"}, "description"),
    ]
    invalid_update_data = [({"steps": [{"type": "wait", "config": {}}]}, "steps")]

    def make(self):
        return two_indicator()

    def create_data(self):
        return {
            "name": "Swing",
            "type": "two_indicator",
            "steps": TWO["steps"],
            "default_params": TWO["default_params"],
            "description": "Daily and weekly",
        }

    def update_data(self, obj):
        return {"name": "Swing (daily)", "steps": TWO["steps"][:2] + TWO["steps"][3:]}

    def test_a_change_that_would_break_a_strategy_is_refused_naming_it(self, staff_client):
        workflow = self.make()
        trend = StrategyFactory(name="Trend", workflow=workflow)
        swing = StrategyFactory(name="Swing", workflow=workflow, param={"period_1": "1 Y"})
        response = staff_client.patch(self.detail_url(workflow), {"steps": []}, format="json")
        assert_refused(response, 400, "strategies", "pause_strategies")
        assert response.json()["errors"]["strategies"] == [
            f"Swing (#{swing.pk}): steps: the workflow would have no steps",
            f"Trend (#{trend.pk}): steps: the workflow would have no steps",
        ]
        typo = [
            {**step, "config": {**step["config"], "period": "{{perod_1}}"}}
            if step["type"] == "fetch_data" and step["config"]["period"] == "{{period_1}}"
            else step
            for step in TWO["steps"]
        ]
        response = staff_client.patch(self.detail_url(workflow), {"steps": typo}, format="json")
        assert_refused(response, 400, "strategies")
        assert (
            f"Trend (#{trend.pk}): perod_1: is required by the workflow"
            in (response.json()["errors"]["strategies"])
        )
        workflow.refresh_from_db()
        assert workflow.steps == TWO["steps"] and workflow.versions.count() == 1

        response = staff_client.patch(
            self.detail_url(workflow), {"steps": typo, "pause_strategies": True}, format="json"
        )
        assert response.status_code == 200, response.content
        trend.refresh_from_db()
        swing.refresh_from_db()
        assert not trend.active and not swing.active
        workflow.refresh_from_db()
        assert workflow.steps == typo

    def test_broken_json_is_a_400_saying_where_it_broke(self, staff_client):
        workflow = self.make()
        body = '{"steps": [\n  {"type": "fetch_data",}\n]}'
        response = staff_client.patch(self.detail_url(workflow), body,
                                      content_type="application/json")  # fmt: skip
        assert_refused(response, 400)
        assert response.json()["detail"] == (
            "JSON parse error - Expecting property name enclosed in double quotes: "
            "line 2 column 25 (char 36)"
        )
        assert Workflow.objects.get(pk=workflow.pk).steps == workflow.steps

    def test_a_built_in_template_is_read_only(self, staff_client):
        builtin = Workflow.objects.get(type="two_indicator", name=TWO["name"])
        response = staff_client.patch(self.detail_url(builtin), {"steps": []}, format="json")
        assert_refused(response, 400, "steps")
        assert response.json()["errors"]["steps"] == [
            "A built-in template is read-only: clone it and edit the copy."
        ]
        builtin.refresh_from_db()
        assert builtin.steps == TWO["steps"]

    def test_steps_problems_name_the_step(self, staff_client):
        steps = [{"type": "fetch_data", "config": {"period": "forever", "bar": "1 day"}}]
        response = staff_client.post(
            self.list_url(), {"name": "W", "type": "custom", "steps": steps}, format="json"
        )
        assert_refused(response, 400, "steps")
        assert any("step 1 (fetch_data): period" in p for p in response.json()["errors"]["steps"])

    def test_each_save_of_steps_is_a_version_by_its_author(self, staff_client, staff):
        created = staff_client.post(self.list_url(), self.create_data(), format="json").json()
        assert created["current_version_number"] == 1
        changed = staff_client.patch(
            self.detail_url(created["id"]), self.update_data(None), format="json"
        ).json()
        assert changed["current_version_number"] == 2
        versions = staff_client.get(url("workflow-versions", created["id"])).json()
        assert [(v["version_number"], v["created_by"]) for v in versions["results"]] == [
            (2, staff.username),
            (1, staff.username),
        ]
        assert versions["results"][1]["steps"] == TWO["steps"]
        assert versions["results"][0]["workflow_id"] == created["id"]

    def test_revert_writes_the_next_version_with_old_steps(self, staff_client, reader_client):
        workflow = self.make()
        workflow_update(workflow=workflow, steps=TWO["steps"][:2] + TWO["steps"][3:])
        revert = url("workflow-revert", workflow)
        assert_refused(reader_client.post(revert, {"version_number": 1}, format="json"), 403)
        response = staff_client.post(revert, {"version_number": 1}, format="json")
        assert response.status_code == 200, response.content
        assert (response.json()["current_version_number"], response.json()["steps"]) == (
            3,
            TWO["steps"],
        )
        assert_refused(staff_client.post(revert, {"version_number": 9}, format="json"), 400,
                       "version_number")  # fmt: skip
        assert_refused(staff_client.post(revert, {"version_number": "one"}, format="json"), 400,
                       "version_number")  # fmt: skip
        assert_refused(staff_client.post(revert, {}, format="json"), 400, "version_number")
        assert_refused(staff_client.post(url("workflow-revert", 2_000_000_000), {}), 404)

    def test_clone(self, staff_client, reader_client):
        workflow = self.make()
        assert_refused(reader_client.post(url("workflow-clone", workflow)), 403)
        response = staff_client.post(url("workflow-clone", workflow))
        assert response.status_code == 201, response.content
        copy = response.json()
        assert (copy["name"], copy["steps"], copy["current_version_number"]) == (
            "Swing (Copy)",
            TWO["steps"],
            1,
        )
        assert Workflow.objects.get(pk=copy["id"]).steps == workflow.steps != []
        assert copy["id"] != workflow.pk

    def test_a_clone_of_a_workflow_whose_name_fills_its_column_is_named_to_fit(self, staff_client):
        workflow = self.make()
        Workflow.objects.filter(pk=workflow.pk).update(name="x" * 200)
        response = staff_client.post(url("workflow-clone", workflow))
        assert response.status_code == 201, response.content
        assert response.json()["name"] == "x" * 192 + "… (Copy)"

    def test_a_run_that_could_only_fail_is_refused(self, staff_client):
        draft = workflow_create(name="Draft", type="custom", steps=[])
        strategy = StrategyFactory()  # no codes
        response = staff_client.post(url("workflow-run", draft), {"strategy_id": strategy.pk},
                                     format="json")  # fmt: skip
        assert_refused(response, 400)
        assert response.json()["errors"] == {
            "workflow_id": ["The workflow 'Draft' has no steps yet."],
            "codes": ["The strategy has no codes to run on."],
        }
        assert not WorkflowExecution.objects.exists()

    def test_run_for_a_strategy_answers_202_with_the_execution(self, staff_client, reader_client):
        workflow = self.make()
        strategy = StrategyFactory()  # no workflow of its own: this one runs with its param
        strategy.codes.add(CodeFactory())
        run = url("workflow-run", workflow)
        assert_refused(reader_client.post(run, {"strategy_id": strategy.pk}, format="json"), 403)
        response = staff_client.post(run, {"strategy_id": strategy.pk}, format="json")
        assert response.status_code == 202, response.content
        started = response.json()
        execution = WorkflowExecution.objects.get(pk=started["execution_id"])
        assert (execution.workflow_id, execution.strategy_id) == (workflow.pk, strategy.pk)
        assert (started["task_id"], started["status"]) == (execution.task_id, "pending")
        assert response["Location"] == url("execution-detail", execution)

        assert_refused(staff_client.post(run, {}, format="json"), 400, "strategy_id")
        assert_refused(staff_client.post(run, {"strategy_id": 2_000_000_000}, format="json"),
                       400, "strategy_id")  # fmt: skip
        unknown = url("workflow-run", 2_000_000_000)
        assert_refused(staff_client.post(unknown, {"strategy_id": strategy.pk}), 404)
        assert WorkflowExecution.objects.count() == 1

    def test_run_refuses_a_strategy_without_the_params_the_workflow_needs(self, staff_client):
        workflow = workflow_create(
            name="Bare", type="two_indicator", steps=TWO["steps"], default_params={}
        )
        strategy = StrategyFactory(param={"period_1": "1 Y", "bar_1": "1 day"})
        response = staff_client.post(
            url("workflow-run", workflow), {"strategy_id": strategy.pk}, format="json"
        )
        assert_refused(response, 400, "param")
        assert "min_r_coefficient" in response.json()["errors"]["param"]
        assert not WorkflowExecution.objects.exists()

    def test_versions_of_an_unknown_workflow_is_404(self, reader_client):
        assert_refused(reader_client.get(url("workflow-versions", 2_000_000_000)), 404)

    def test_a_workflow_in_use_is_kept(self, staff_client):
        workflow = self.make()
        StrategyFactory(workflow=workflow)
        assert_refused(staff_client.delete(self.detail_url(workflow)), 400, "id")
        assert Workflow.objects.filter(pk=workflow.pk).exists()

    def test_filters_by_name_and_type(self, reader_client):
        swing = two_indicator("Swing")
        other = workflow_create(name="Scalp", type="custom")
        assert ids(reader_client.get(self.list_url(), {"name": "swi"})) == [swing.pk]
        custom = ids(reader_client.get(self.list_url(), {"type": "custom"}))
        assert other.pk in custom and swing.pk not in custom


class TestExecutions(APIViewTestCases.ReadOnlyViewSet):
    basename = "execution"
    model = WorkflowExecution
    expected_fields = EXECUTION_FIELDS
    list_queries = 1
    filterset = ExecutionFilter

    def make(self):
        return ExecutionFactory()

    def test_progress_is_in_the_body(self, reader_client):
        execution = ExecutionFactory(progress={"step": 2, "of": 8, "symbol": "AAPL"})
        body = reader_client.get(self.detail_url(execution)).json()
        assert body["progress"] == {"step": 2, "of": 8, "symbol": "AAPL"}
        assert (body["workflow_id"], body["strategy_id"]) == (
            execution.workflow_id,
            execution.strategy_id,
        )

    def test_a_run_where_some_codes_failed_is_flagged_partial_naming_them(self, reader_client):
        failures = {"MSFT": "IB refused historical data for MSFT: error 162"}
        partial = ExecutionFactory(
            status="completed", results={"failures": failures, "failed_symbols": ["MSFT"]},
            error_message="1 of 2 codes failed: MSFT: IB refused historical data ...",
        )  # fmt: skip
        whole = ExecutionFactory(status="completed", results={"failures": {}})
        failed = ExecutionFactory(status="failed", results={"failures": failures})
        body = reader_client.get(self.detail_url(partial)).json()
        assert (body["status"], body["partial"], body["failed_codes"]) == (
            "completed",
            True,
            failures,
        )
        assert reader_client.get(self.detail_url(whole)).json()["partial"] is False
        body = reader_client.get(self.detail_url(failed)).json()
        assert (body["partial"], body["failed_codes"]) == (False, failures)

    def test_filters_by_workflow_strategy_status_and_started_range(self, reader_client):
        at = lambda day: datetime(2025, 3, day, 12, tzinfo=UTC)  # noqa: E731
        first = ExecutionFactory(started_at=at(1))
        second = ExecutionFactory(
            workflow=first.workflow, strategy=first.strategy, status="failed", started_at=at(5)
        )
        third = ExecutionFactory(status="running", started_at=at(9))
        get = lambda **query: ids(reader_client.get(self.list_url(), query))  # noqa: E731
        assert get(workflow_id=first.workflow_id) == [second.pk, first.pk]
        assert get(strategy_id=third.strategy_id) == [third.pk]
        assert get(status="failed") == [second.pk]
        assert get(started_after="2025-03-05T12:00:00Z") == [third.pk, second.pk]
        assert get(started_after="2025-03-02T00:00:00Z", started_before="2025-03-09T00:00Z") == [
            second.pk
        ]
        assert get(workflow_id=first.workflow_id, status="running") == []
        assert_refused(reader_client.get(self.list_url(), {"status": "done"}), 400, "status")
        assert_refused(reader_client.get(self.list_url(), {"workflow_id": "1.5"}), 400,
                       "workflow_id")  # fmt: skip


class TestCancel(APITestCase):
    basename = "execution"

    def test_cancel_a_pending_execution(self, staff_client, reader_client):
        execution = ExecutionFactory(status="pending", started_at=None)
        cancel = url("execution-cancel", execution)
        assert_refused(reader_client.post(cancel), 403)
        response = staff_client.post(cancel)
        assert response.status_code == 200, response.content
        assert response.json()["status"] == "cancelled"
        assert response.json()["completed_at"] is not None
        assert staff_client.get(self.detail_url(execution)).json()["status"] == "cancelled"

    def test_a_running_execution_is_marked_to_stop_between_steps(self, staff_client):
        execution = ExecutionFactory(status="running")
        body = staff_client.post(url("execution-cancel", execution)).json()
        assert (body["status"], body["completed_at"]) == ("cancelled", None)

    def test_a_finished_execution_cannot_be_cancelled(self, staff_client):
        execution = ExecutionFactory(status="completed")
        assert_refused(staff_client.post(url("execution-cancel", execution)), 400, "status")
        assert WorkflowExecution.objects.get(pk=execution.pk).status == "completed"
        assert_refused(staff_client.post(url("execution-cancel", 2_000_000_000)), 404)


class TestConversation(APITestCase):
    basename = "execution"

    def test_messages_in_the_order_spoken(self, reader_client, django_assert_num_queries):
        execution = ExecutionFactory()
        start = datetime(2025, 3, 1, 12, tzinfo=UTC)
        spoken = [
            AgentMessageFactory(
                workflow_execution=execution,
                agent_name=name,
                timestamp=start + timedelta(seconds=seconds),
            )
            for name, seconds in [("RiskManager", 5), ("TechnicalAnalyst", 1), ("Executor", 9)]
        ]
        AgentMessageFactory()  # another execution's
        with django_assert_num_queries(2):  # the execution, the page
            response = reader_client.get(url("execution-conversation", execution))
        assert response.status_code == 200, response.content
        rows = results(response)
        assert [row["agent_name"] for row in rows] == [
            "TechnicalAnalyst",
            "RiskManager",
            "Executor",
        ]
        assert {row["id"] for row in rows} == {m.pk for m in spoken}
        assert set(rows[0]) == MESSAGE_FIELDS
        assert rows[0]["workflow_execution_id"] == execution.pk

    def test_query_count_does_not_grow(self, reader_client, django_assert_num_queries):
        execution = ExecutionFactory()
        AgentMessageFactory(workflow_execution=execution)
        with django_assert_num_queries(2):
            assert len(results(reader_client.get(url("execution-conversation", execution)))) == 1
        AgentMessageFactory.create_batch(19, workflow_execution=execution)
        with django_assert_num_queries(2):
            assert len(results(reader_client.get(url("execution-conversation", execution)))) == 20

    def test_refusals(self, anonymous, reader_client):
        execution = ExecutionFactory()
        assert_refused(anonymous.get(url("execution-conversation", execution)), 401)
        assert_refused(reader_client.get(url("execution-conversation", 2_000_000_000)), 404)


class TestWorkflowMetrics(APIViewTestCases.ReadOnlyViewSet):
    basename = "workflow-metrics"
    model = WorkflowMetrics
    expected_fields = {"id", "workflow_id", "date", "metrics"}
    list_queries = 2
    filterset = WorkflowMetricsFilter

    def make(self):
        return WorkflowMetricsFactory()

    def test_filters_by_workflow_and_date_range(self, reader_client):
        first = WorkflowMetricsFactory(date=date(2025, 3, 1))
        second = WorkflowMetricsFactory(workflow=first.workflow, date=date(2025, 3, 2))
        other = WorkflowMetricsFactory(date=date(2025, 3, 2))
        get = lambda **query: ids(reader_client.get(self.list_url(), query))  # noqa: E731
        assert get(workflow_id=first.workflow_id) == [second.pk, first.pk]
        assert set(get(date_after="2025-03-02")) == {second.pk, other.pk}
        assert get(date_before="2025-03-01") == [first.pk]
        assert_refused(reader_client.get(self.list_url(), {"date_after": "03/02/2025"}), 400,
                       "date_after")  # fmt: skip


class TestAgentPerformance(APITestCase):
    def performance_url(self):
        return reverse("api:agent-performance")

    def test_per_agent_messages_tokens_and_decisions(self, reader_client):
        together, analyst_only, no_decision = ExecutionFactory.create_batch(3)
        for execution in (together, analyst_only, no_decision):
            AgentMessageFactory(workflow_execution=execution, tokens_used=100)
        AgentMessageFactory(workflow_execution=together, agent_name="RiskManager", tokens_used=50)
        AgentMessageFactory(workflow_execution=together, agent_name="RiskManager", tokens_used=None)
        make_decision(workflow_execution=together)
        make_decision(workflow_execution=together)
        make_decision(workflow_execution=analyst_only)
        make_decision()  # made outside any execution

        response = reader_client.get(self.performance_url())
        assert response.status_code == 200, response.content
        assert response.json() == [
            {
                "agent_name": "RiskManager",
                "total_messages": 2,
                "average_tokens": 50.0,
                "decisions_influenced": 2,
            },
            {
                "agent_name": "TechnicalAnalyst",
                "total_messages": 3,
                "average_tokens": 100.0,
                "decisions_influenced": 3,
            },
        ]

    def test_query_count_does_not_grow(self, reader_client, django_assert_num_queries):
        AgentMessageFactory()
        with django_assert_num_queries(2):
            assert len(reader_client.get(self.performance_url()).json()) == 1
        for name in range(19):
            AgentMessageFactory(agent_name=f"Agent{name}")
        with django_assert_num_queries(2):
            assert len(reader_client.get(self.performance_url()).json()) == 20

    def test_refused_to_anonymous(self, anonymous):
        assert_refused(anonymous.get(self.performance_url()), 401)
