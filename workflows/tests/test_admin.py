import json

import pytest
from django.contrib.auth.models import User
from django.utils.html import escape

from marketdata.tests.factories import market_document
from strategies.tests.factories import StrategyFactory
from tradingsite.testing.factories import (
    AgentMessageFactory,
    ExecutionFactory,
    make_decision,
    make_fill,
)
from workflows.charts import chart_render
from workflows.models import Workflow, WorkflowExecution
from workflows.services import workflow_create, workflow_update
from workflows.templates import TEMPLATES

pytestmark = pytest.mark.django_db

TWO = TEMPLATES["two_indicator"]


def form(workflow, steps):
    return {
        "name": workflow.name,
        "type": workflow.type,
        "description": workflow.description,
        "steps": json.dumps(steps),
        "default_params": json.dumps(workflow.default_params),
        "versions-TOTAL_FORMS": "0",
        "versions-INITIAL_FORMS": str(workflow.versions.count()),
    }


@pytest.fixture
def template():
    """A copy of the built-in two_indicator template (the template itself is read-only)."""
    return workflow_create(name="Two indicator, mine", type="two_indicator", steps=TWO["steps"],
                           default_params=TWO["default_params"])  # fmt: skip


def test_a_built_in_template_is_read_only_and_offers_its_clone(admin_client):
    builtin = Workflow.objects.get(type="two_indicator", name=TWO["name"])
    page = admin_client.get(f"/admin/workflows/workflow/{builtin.pk}/change/", secure=True)
    html = page.content.decode()
    assert 'name="_save"' not in html and ">Clone (a copy with the same steps)</button>" in html
    response = admin_client.post(f"/admin/workflows/workflow/{builtin.pk}/change/",
                                 form(builtin, []), secure=True)  # fmt: skip
    assert response.status_code == 403
    builtin.refresh_from_db()
    assert builtin.steps == TWO["steps"]


def test_broken_json_says_where(admin_client, template):
    data = {**form(template, TWO["steps"]), "steps": '[\n  {"type": "fetch_data",\n  }\n]'}
    response = admin_client.post(f"/admin/workflows/workflow/{template.pk}/change/", data,
                                 secure=True)  # fmt: skip
    assert response.context["adminform"].form.errors["steps"] == [
        "Enter a valid JSON: Expecting property name enclosed in double quotes at line 3, column 3."
    ]


def test_a_save_that_would_break_a_strategy_is_refused_naming_it_then_confirmed(
    admin_client, template
):
    strategy = StrategyFactory(name="Trend", workflow=template, active=True)
    typo = json.loads(json.dumps(TWO["steps"]).replace("{{period_1}}", "{{perod_1}}"))
    url = f"/admin/workflows/workflow/{template.pk}/change/"
    response = admin_client.post(url, form(template, typo), secure=True)
    errors = response.context["adminform"].form.non_field_errors()
    assert errors[0] == "Saving would break 1 strategy using this workflow:"
    assert errors[1] == f"Trend (#{strategy.pk}): perod_1: is required by the workflow"
    html = response.content.decode()
    assert 'type="checkbox" name="pause_strategies"' in html  # the second screen
    template.refresh_from_db()
    assert template.steps == TWO["steps"]

    response = admin_client.post(url, {**form(template, typo), "pause_strategies": "on"},
                                 secure=True, follow=True)  # fmt: skip
    assert "Paused, as confirmed: Trend." in response.content.decode()
    template.refresh_from_db()
    strategy.refresh_from_db()
    assert template.steps == typo and not strategy.active


def test_saving_steps_in_the_admin_writes_a_version_by_that_user(admin_client, template):
    steps = [s for s in TWO["steps"] if s["type"] != "generate_chart"]
    response = admin_client.post(f"/admin/workflows/workflow/{template.pk}/change/",
                                 form(template, steps), secure=True)  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    template.refresh_from_db()
    assert template.steps == steps
    assert (template.current_version.version_number, template.current_version.created_by) == (
        2, "admin",
    )  # fmt: skip


def test_invalid_steps_show_the_message_and_save_nothing(admin_client, template):
    steps = [{"type": "fetch_data", "config": {"period": "1 year", "bar": "1 day"}}]
    response = admin_client.post(f"/admin/workflows/workflow/{template.pk}/change/",
                                 form(template, steps), secure=True)  # fmt: skip
    assert response.status_code == 200
    page = response.content.decode()
    assert "step 1 (fetch_data): period: &#x27;1 year&#x27; is not an IB duration" in page
    assert "needs an ai_analyze, autogen_team or decide step" in page
    template.refresh_from_db()
    assert template.steps == TWO["steps"] and template.versions.count() == 1


@pytest.mark.parametrize(
    ("default_params", "reason"),
    [
        ('{"period_1": NaN}', "period_1: numbers must be finite."),
        ('{"period_1": "1\\u0000 Y"}', "period_1: NUL characters are not allowed."),
        ("[1]", "Must be an object of parameter names to values."),
        ('"1 Y"', "Must be an object of parameter names to values."),
        (
            '{"period_1": "forever"}',
            'period_1: \'forever\' is not an IB duration such as "1 Y", "6 M", "2 W" or "10 D".',
        ),
        ('{"risk_per_trade": 2}', "risk_per_trade: must be at most 1"),
        ("[" * 2000 + "]" * 2000, "JSON nested deeper than 64 levels (arrays and objects)."),
    ],
)
def test_default_params_that_cannot_be_stored_are_refused_at_the_field(
    admin_client, template, default_params, reason
):
    for url in ("/admin/workflows/workflow/add/",
                f"/admin/workflows/workflow/{template.pk}/change/"):  # fmt: skip
        data = {**form(template, TWO["steps"]), "name": "Edited",
                "default_params": default_params}  # fmt: skip
        response = admin_client.post(url, data, secure=True)
        assert response.status_code == 200
        assert response.context["adminform"].form.errors["default_params"] == [reason]
    assert not Workflow.objects.filter(name="Edited").exists()
    template.refresh_from_db()
    assert template.default_params == TWO["default_params"]


def test_steps_nested_too_deep_are_refused_at_the_field_and_shown_as_typed(admin_client, template):
    steps = '[{"type": "fetch_data", "config": ' + "[" * 2000 + "]" * 2000 + "}]"
    data = {**form(template, TWO["steps"]), "steps": steps}
    response = admin_client.post(f"/admin/workflows/workflow/{template.pk}/change/", data,
                                 secure=True)  # fmt: skip
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["steps"] == [
        "JSON nested deeper than 64 levels (arrays and objects)."
    ]
    assert escape(steps) in response.content.decode()
    template.refresh_from_db()
    assert template.steps == TWO["steps"]


def test_the_history_names_who_saved_each_version_and_what_changed(admin_client, template):
    steps = [s for s in TWO["steps"] if s["type"] != "generate_chart"]
    workflow_update(workflow=template, steps=steps, created_by=User(username="trader"),
                    note="No chart")  # fmt: skip
    page = admin_client.get(f"/admin/workflows/workflow/{template.pk}/change/", secure=True)
    html = page.content.decode()
    assert "<td>trader</td>" in html
    assert "<td>No chart</td><td>1 removed</td>" in html
    assert f'href="/admin/workflows/workflow/{template.pk}/versions/2/">v2</a> (current)' in html


def test_the_version_page_diffs_steps_naming_each_step(admin_client, template):
    steps = json.loads(json.dumps(TWO["steps"]))
    steps[0]["config"]["period"] = "6 M"
    steps = [s for s in steps if s["type"] != "wait"]
    workflow_update(workflow=template, steps=steps, created_by=User(username="trader"))
    page = admin_client.get(f"/admin/workflows/workflow/{template.pk}/versions/2/", secure=True)
    html = page.content.decode()
    assert "Steps changed from v1 to v2" in html
    assert "config.period: &#x27;{{period_1}}&#x27; -&gt; &#x27;6 M&#x27;" in html
    assert '<tr class="removed"> <td>8</td><td></td> <td>wait</td>' in " ".join(html.split())
    assert 'value="Revert to version 2"' not in html  # v2 is the current one
    # its steps as indented JSON, not a Python repr
    assert '<pre class="steps">[\n  {\n    &quot;type&quot;: &quot;fetch_data&quot;,' in html
    assert (
        'value="Revert to version 1"'
        in admin_client.get(
            f"/admin/workflows/workflow/{template.pk}/versions/1/", secure=True
        ).content.decode()
    )


def test_revert_writes_a_new_version_with_the_old_steps(admin_client, template):
    workflow_update(workflow=template, steps=TWO["steps"][:5], created_by=User(username="x"))
    response = admin_client.post(f"/admin/workflows/workflow/{template.pk}/versions/1/revert/",
                                 secure=True, follow=True)  # fmt: skip
    template.refresh_from_db()
    assert template.steps == TWO["steps"]
    assert (template.current_version.version_number, template.current_version.created_by,
            template.current_version.note) == (3, "admin", "Reverted from v1")  # fmt: skip
    assert "Reverted Two indicator, mine to the steps of v1, saved as v3." in (
        response.content.decode()
    )
    missing = admin_client.post(f"/admin/workflows/workflow/{template.pk}/versions/9/revert/",
                                secure=True, follow=True)  # fmt: skip
    assert "has no version 9" in missing.content.decode()
    assert admin_client.get(f"/admin/workflows/workflow/{template.pk}/versions/1/revert/",
                            secure=True).status_code == 405  # fmt: skip


def test_clone_makes_a_copy_and_lists_strategies_using_a_workflow(admin_client, template):
    StrategyFactory(name="Uses it", workflow=template)
    page = admin_client.get(f"/admin/workflows/workflow/{template.pk}/change/", secure=True)
    assert ">Uses it</a>" in page.content.decode()
    listing = admin_client.get("/admin/workflows/workflow/", secure=True).content.decode()
    assert f'href="/admin/strategies/strategy/?workflow__id__exact={template.pk}">1</a>' in listing
    response = admin_client.post(f"/admin/workflows/workflow/{template.pk}/do/clone/",
                                 secure=True, follow=True)  # fmt: skip
    copy = Workflow.objects.get(name=f"{template.name} (Copy)")
    assert copy.steps == template.steps and copy.current_version.created_by == "admin"
    assert response.redirect_chain[-1][0].endswith(f"/admin/workflows/workflow/{copy.pk}/change/")


def test_a_workflow_in_use_is_not_deleted(admin_client, template):
    ExecutionFactory(workflow=template)
    response = admin_client.post(f"/admin/workflows/workflow/{template.pk}/delete/",
                                 {"post": "yes"}, secure=True, follow=True)  # fmt: skip
    assert "Cannot delete workflow" in response.content.decode()
    assert Workflow.objects.filter(pk=template.pk).exists()


# --- Executions ---------------------------------------------------------------------------------


def test_a_running_execution_shows_a_progress_bar_that_refreshes_itself(admin_client):
    execution = ExecutionFactory(status="running", progress={
        "current_step": 4, "step_type": "autogen_team", "total_steps": 9,
        "current_symbol": "MSFT", "completed_symbols": 1, "total_symbols": 2, "percent": 67,
    })  # fmt: skip
    page = admin_client.get(f"/admin/workflows/workflowexecution/{execution.pk}/change/",
                            secure=True).content.decode()  # fmt: skip
    assert f'data-url="/admin/workflows/workflowexecution/{execution.pk}/progress/"' in page
    assert 'style="width: 67%"' in page
    assert "Step 4 of 9 (autogen_team) on MSFT, 1 of 2 codes done" in page
    assert "tradingsite/execution_progress.js" in page
    state = admin_client.get(f"/admin/workflows/workflowexecution/{execution.pk}/progress/",
                             secure=True).json()  # fmt: skip
    assert (state["status"], state["final"], state["percent"]) == ("running", False, 67)
    WorkflowExecution.objects.filter(pk=execution.pk).update(status="completed")
    state = admin_client.get(f"/admin/workflows/workflowexecution/{execution.pk}/progress/",
                             secure=True).json()  # fmt: skip
    assert (state["final"], state["percent"], state["text"]) == (True, 100, "Completed")


def test_a_finished_execution_shows_results_log_decisions_and_charts(admin_client, settings,
                                                                     tmp_path):  # fmt: skip
    settings.MEDIA_ROOT = tmp_path
    execution = ExecutionFactory(status="completed")
    chart = chart_render(execution_id=execution.pk, symbol="AAPL", bar="1 day",
                         document=market_document(trend="up"))  # fmt: skip
    decision = make_decision(strategy=execution.strategy, workflow_execution=execution)
    order = make_fill(decision=decision, instrument=decision.code)
    execution.results = {
        "symbols_processed": 1, "decisions_made": 1, "orders_placed": 1,
        "charts": [{"symbol": "AAPL", "bar": "1 day", "path": chart}],
        "failed_symbols": [], "dry_run": False,
        "execution_logs": [{"time": "2026-01-02T10:11:12+00:00", "level": "error",
                            "message": "MSFT failed: no bars", "symbol": "MSFT"}],
    }  # fmt: skip
    execution.save()
    page = admin_client.get(f"/admin/workflows/workflowexecution/{execution.pk}/change/",
                            secure=True).content.decode()  # fmt: skip
    assert "1 codes processed, 1 decisions, 1 orders; failed codes: none" in page
    assert '<tr class="level-error"><td>10:11:12</td><td>MSFT</td><td></td><td>MSFT failed' in page
    assert f'/admin/orders/order/{order.pk}/change/">order #{order.pk} BUY' in page
    image = f"/admin/workflows/workflowexecution/{execution.pk}/charts/AAPL_1day.png"
    assert f'<img src="{image}"' in page
    png = admin_client.get(image, secure=True)
    assert png["Content-Type"] == "image/png"
    assert b"".join(png.streaming_content).startswith(b"\x89PNG")
    assert admin_client.get(image.replace("AAPL", "MSFT"), secure=True).status_code == 404
    assert "Cancel" not in page.split('class="object-tools"')[1].split("</ul>")[0]


def test_the_transcript_shows_agent_time_and_tokens(admin_client):
    execution = ExecutionFactory()
    AgentMessageFactory(
        workflow_execution=execution,
        agent_name="TechnicalAnalyst",
        message_type="request",
        message_content="Look at AAPL",
        tokens_used=40,
    )
    AgentMessageFactory(workflow_execution=execution, agent_name="RiskManager",
                        message_content="Stop at 95 <b>", tokens_used=None)  # fmt: skip
    page = admin_client.get(f"/admin/workflows/workflowexecution/{execution.pk}/change/",
                            secure=True).content.decode()  # fmt: skip
    assert "Open the transcript</a> 2 messages, 40 tokens" in page
    transcript = admin_client.get(
        f"/admin/workflows/workflowexecution/{execution.pk}/transcript/", secure=True
    ).content.decode()
    assert transcript.index("Look at AAPL") < transcript.index("Stop at 95 &lt;b&gt;")
    assert '<span class="agent">TechnicalAnalyst</span>' in transcript
    assert "40 tokens" in transcript and "tokens not reported" in transcript
    assert "<td>RiskManager</td><td>1</td><td>0</td>" in transcript


def test_cancel_stops_a_pending_execution_and_refuses_a_finished_one(admin_client):
    pending = ExecutionFactory(status="pending")
    done = ExecutionFactory(status="completed")
    page = admin_client.get(f"/admin/workflows/workflowexecution/{pending.pk}/change/",
                            secure=True).content.decode()  # fmt: skip
    assert f'action="/admin/workflows/workflowexecution/{pending.pk}/do/cancel/"' in page
    response = admin_client.post("/admin/workflows/workflowexecution/", {
        "action": "cancel", "_selected_action": [pending.pk, done.pk],
    }, secure=True, follow=True)  # fmt: skip
    html = response.content.decode()
    assert f"Cancelled execution #{pending.pk}." in html
    assert f"Execution #{done.pk}: Execution {done.pk} is already completed." in html
    pending.refresh_from_db()
    assert pending.status == "cancelled"


def test_executions_filter_by_status_strategy_and_date(admin_client):
    failed = ExecutionFactory(status="failed")
    ExecutionFactory(status="completed")
    page = admin_client.get("/admin/workflows/workflowexecution/?status__exact=failed",
                            secure=True).content.decode()  # fmt: skip
    assert page.count('<span class="status status-failed">failed</span>') == 1
    assert "status-completed" not in page.split('id="result_list"')[1]
    by_strategy = admin_client.get(
        f"/admin/workflows/workflowexecution/?strategy__id__exact={failed.strategy_id}",
        secure=True,
    ).content.decode()  # fmt: skip
    assert "1 workflow execution" in by_strategy
    html = admin_client.get("/admin/workflows/workflowexecution/", secure=True).content.decode()
    assert "Past 7 days" in html and "By workflow" in html


def test_conversations_list_links_to_the_transcript(admin_client):
    message = AgentMessageFactory()
    page = admin_client.get("/admin/workflows/agentconversation/", secure=True).content.decode()
    run = message.workflow_execution_id
    assert f'href="/admin/workflows/workflowexecution/{run}/transcript/">#{run}</a>' in page


def test_an_execution_and_its_transcript_link_to_the_decisions_it_made(admin_client):
    execution = ExecutionFactory()
    made = make_decision(strategy=execution.strategy, workflow_execution=execution,
                         current_price="101.500000")  # fmt: skip
    elsewhere = make_decision(strategy=execution.strategy)
    AgentMessageFactory(workflow_execution=execution)
    decision_link = (
        f'<a href="/admin/strategies/decision/{made.pk}/change/">'
        f"buy {made.code.symbol} @ 101.50</a>"
    )
    listing = f"/admin/strategies/decision/?workflow_execution__id__exact={execution.pk}"
    for url in (f"/admin/workflows/workflowexecution/{execution.pk}/change/",
                f"/admin/workflows/workflowexecution/{execution.pk}/transcript/"):  # fmt: skip
        page = admin_client.get(url, secure=True).content.decode()
        assert decision_link in page
        assert f'href="{listing}"' in page
        assert f"/admin/strategies/decision/{elsewhere.pk}/change/" not in page
    decisions = admin_client.get(listing, secure=True).content.decode()
    assert f"/admin/strategies/decision/{made.pk}/change/" in decisions
    assert f"/admin/strategies/decision/{elsewhere.pk}/change/" not in decisions


def test_a_transcript_of_a_run_that_decided_nothing_says_so(admin_client):
    execution = ExecutionFactory()
    page = admin_client.get(f"/admin/workflows/workflowexecution/{execution.pk}/transcript/",
                            secure=True).content.decode()  # fmt: skip
    assert "Decisions made:\n  none." in page
