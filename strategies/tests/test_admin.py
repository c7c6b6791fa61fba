import json

import pytest
from django_celery_beat.models import PeriodicTask

from marketdata.tests.factories import CodeFactory
from strategies.models import Strategy
from tradingsite.testing.factories import ExecutionFactory, make_decision, make_fill
from workflows.models import Workflow, WorkflowExecution
from workflows.services import strategy_create

pytestmark = pytest.mark.django_db


def add_form(workflow, codes, **overrides):
    data = {
        "name": "Admin made",
        "type": "two_indicator",
        "workflow": workflow.pk,
        "param": json.dumps({"period_1": "6 M"}),
        "active": "on",
        "schedule_interval_minutes": "15",
        "schedule_crontab": "",
        "traded_codes": [code.pk for code in codes],
    }
    data.update(overrides)
    return data


def test_a_strategy_saved_in_the_admin_is_scheduled_in_beat(admin_client):
    workflow = Workflow.objects.get(type="two_indicator")
    codes = [CodeFactory(), CodeFactory()]
    response = admin_client.post(
        "/admin/strategies/strategy/add/", add_form(workflow, codes), secure=True
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    strategy = Strategy.objects.get(name="Admin made")
    assert set(strategy.codes.all()) == set(codes)
    task = PeriodicTask.objects.get(pk=strategy.periodic_task_id)
    assert (task.interval.every, task.enabled) == (15, True)


def test_params_the_workflow_cannot_run_with_are_refused_by_field(admin_client):
    workflow = Workflow.objects.get(type="two_indicator")
    data = add_form(workflow, [CodeFactory()], param=json.dumps({"bar_2": "1 fortnight"}))
    response = admin_client.post("/admin/strategies/strategy/add/", data, secure=True)
    assert response.status_code == 200
    assert "bar_2: &#x27;1 fortnight&#x27; is not an IB bar size" in response.content.decode()
    assert not Strategy.objects.filter(name="Admin made").exists()


def test_a_strategy_without_codes_is_refused_at_the_codes_field(admin_client):
    workflow = Workflow.objects.get(type="two_indicator")
    reason = ["A strategy trades at least one code: choose one or more."]
    response = admin_client.post("/admin/strategies/strategy/add/", add_form(workflow, []),
                                 secure=True)  # fmt: skip
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["traded_codes"] == reason
    assert not Strategy.objects.filter(name="Admin made").exists()
    strategy = strategy_create(name="Held", type="two_indicator", workflow=workflow,
                               codes=[CodeFactory(symbol="KEEP")])  # fmt: skip
    response = admin_client.post(f"/admin/strategies/strategy/{strategy.pk}/change/",
                                 add_form(workflow, [], name="Emptied"), secure=True)  # fmt: skip
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["traded_codes"] == reason
    strategy.refresh_from_db()
    assert strategy.name == "Held" and [c.symbol for c in strategy.codes.all()] == ["KEEP"]


def test_each_parameter_is_a_field_and_its_problem_shows_next_to_it(admin_client):
    workflow = Workflow.objects.get(type="two_indicator")
    data = add_form(workflow, [CodeFactory()], param="{}", bar_1="1 fortnight")
    response = admin_client.post("/admin/strategies/strategy/add/", data, secure=True)
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors["bar_1"] == ["bar_1: '1 fortnight' is not an IB bar size such as "
                                    '"1 day", "1 week" or "1 hour".']  # fmt: skip
    assert not Strategy.objects.filter(name="Admin made").exists()


def test_a_parameter_a_step_cannot_use_is_named_at_its_field(admin_client):
    workflow = Workflow.objects.get(type="two_indicator")
    data = add_form(workflow, [CodeFactory()], param="{}", min_r_coefficient="lots")
    response = admin_client.post("/admin/strategies/strategy/add/", data, secure=True)
    form = response.context["adminform"].form
    assert form.errors["min_r_coefficient"] == ["min_r_coefficient: 'lots' is not a number"]
    assert "param" not in form.errors


def test_parameter_fields_are_saved_into_param_and_shown_back(admin_client):
    workflow = Workflow.objects.get(type="two_indicator")
    data = add_form(workflow, [CodeFactory()], param=json.dumps({"note": "x"}), period_1="6 M",
                    bar_1="1 day", min_r_coefficient="1.5")  # fmt: skip
    response = admin_client.post("/admin/strategies/strategy/add/", data, secure=True)
    assert response.status_code == 302, response.content.decode()[:3000]
    strategy = Strategy.objects.get(name="Admin made")
    assert strategy.param == {"note": "x", "period_1": "6 M", "bar_1": "1 day",
                              "min_r_coefficient": "1.5"}  # fmt: skip
    page = admin_client.get(f"/admin/strategies/strategy/{strategy.pk}/change/", secure=True)
    html = page.content.decode()
    assert 'name="period_1" value="6 M"' in html
    assert 'name="period_2" placeholder="2 Y"' in html  # the workflow's default
    assert page.context["adminform"].form["param"].value() == '{\n  "note": "x"\n}'


def test_a_bad_crontab_is_refused_next_to_the_schedule(admin_client):
    workflow = Workflow.objects.get(type="two_indicator")
    data = add_form(workflow, [CodeFactory()], schedule_interval_minutes="",
                    schedule_crontab="every day")  # fmt: skip
    response = admin_client.post("/admin/strategies/strategy/add/", data, secure=True)
    assert response.context["adminform"].form.errors["schedule_crontab"] == [
        "Use 'minute hour day-of-month month day-of-week'."
    ]


TOO_DEEP = "JSON nested deeper than 64 levels (arrays and objects)."


def refused_on_add(admin_client, **overrides):
    """Post the add form; the errors it shows, after checking that nothing was written."""
    workflow = Workflow.objects.get(type="two_indicator")
    data = add_form(workflow, [CodeFactory()], **overrides)
    response = admin_client.post("/admin/strategies/strategy/add/", data, secure=True)
    assert response.status_code == 200
    assert not Strategy.objects.filter(name="Admin made").exists()
    assert not PeriodicTask.objects.filter(task="workflows.tasks.run_workflow").exists()
    return response.context["adminform"].form.errors


@pytest.mark.parametrize("crontab", ["-1 * * * *", "1,,2 * * * *"])
def test_a_crontab_celery_cannot_parse_is_refused_next_to_the_schedule(admin_client, crontab):
    errors = refused_on_add(admin_client, schedule_interval_minutes="", schedule_crontab=crontab)
    [message] = errors["schedule_crontab"]
    assert message  # celery's own reason, e.g. "Invalid beginning range: 2 < 1."


def test_a_schedule_beat_cannot_store_is_refused_next_to_its_field(admin_client):
    every_weekday_seven_times = ",".join("12345" * 7)  # 69 characters; beat keeps 64
    errors = refused_on_add(admin_client, schedule_interval_minutes="",
                            schedule_crontab=f"0 0 * * {every_weekday_seven_times}")  # fmt: skip
    assert errors["schedule_crontab"] == ["The day_of_week field is longer than 64 characters."]
    errors = refused_on_add(admin_client, schedule_interval_minutes="40000000")
    assert errors["schedule_interval_minutes"] == ["Must be at most 525600 minutes (a year)."]


@pytest.mark.parametrize(
    ("param", "reason"),
    [
        ('{"x": NaN}', "x: numbers must be finite."),
        ('{"x": Infinity}', "x: numbers must be finite."),
        ('{"x": "a\\u0000b"}', "x: NUL characters are not allowed."),
        ('{"x\\u0000": 1}', "NUL characters are not allowed."),
        ("[1]", "Must be an object of parameter names to values."),
        ('"abc"', "Must be an object of parameter names to values."),
        ('{"x": ' + "[" * 2000 + "]" * 2000 + "}", TOO_DEEP),
        ('{"x": ' + "[" * 64 + "]" * 64 + "}", TOO_DEEP),
        ('{"x": ' + "9" * 5000 + "}", "Enter a valid JSON: numbers have at most 4300 digits."),
    ],
)
def test_other_parameters_postgresql_or_the_service_refuse_show_at_the_field(
    admin_client, param, reason
):
    assert refused_on_add(admin_client, param=param)["param"] == [reason]


def test_codes_removed_from_the_multi_select_leave_the_strategy(admin_client):
    workflow = Workflow.objects.get(type="two_indicator")
    keep, drop = CodeFactory(symbol="KEEP"), CodeFactory(symbol="DROP")
    strategy = strategy_create(name="Two", type="two_indicator", workflow=workflow,
                               codes=[keep, drop])  # fmt: skip
    data = add_form(workflow, [keep], name="Two")
    response = admin_client.post(f"/admin/strategies/strategy/{strategy.pk}/change/", data,
                                 secure=True)  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:3000]
    assert list(strategy.codes.values_list("symbol", flat=True)) == ["KEEP"]


def test_the_code_inline_looks_codes_up_as_you_type(admin_client):
    aapl = CodeFactory(symbol="AAPL")
    CodeFactory(symbol="MSFT")
    page = admin_client.get("/admin/strategies/strategy/add/", secure=True).content.decode()
    assert "admin-autocomplete" in page
    found = admin_client.get(
        "/admin/autocomplete/?term=AAP&app_label=strategies&model_name=strategycode"
        "&field_name=code", secure=True,
    ).json()  # fmt: skip
    assert [row["text"] for row in found["results"]] == [f"AAPL (SMART, {aapl.conid})"]


@pytest.fixture
def listed(admin_client):
    workflow = Workflow.objects.get(type="two_indicator")
    strategy = strategy_create(
        name="Trend", type="two_indicator", workflow=workflow,
        codes=[CodeFactory(symbol="AAPL"), CodeFactory(symbol="MSFT")],
        schedule_interval_minutes=15,
    )  # fmt: skip
    return strategy


def test_the_list_shows_codes_schedule_and_the_last_run_linked(admin_client, listed):
    execution = ExecutionFactory(strategy=listed, workflow=listed.workflow, status="failed")
    page = admin_client.get("/admin/strategies/strategy/", secure=True).content.decode()
    assert "AAPL, MSFT" in page
    assert "every 15 min" in page
    assert f'href="/admin/workflows/workflowexecution/{execution.pk}/change/"' in page
    assert '<span class="status status-failed">failed</span>' in page


def test_run_now_starts_an_execution_and_opens_it(admin_client, listed):
    response = admin_client.post("/admin/strategies/strategy/", {
        "action": "run_now", "_selected_action": [listed.pk],
    }, secure=True, follow=True)  # fmt: skip
    execution = WorkflowExecution.objects.get(strategy=listed)
    assert execution.status == "pending"
    assert response.redirect_chain[-1][0].endswith(
        f"/admin/workflows/workflowexecution/{execution.pk}/change/"
    )
    page = response.content.decode()
    assert f'Started execution <a href="/admin/workflows/workflowexecution/{execution.pk}' in page
    assert "Queued: waiting for a worker" in page


def test_run_now_refuses_a_strategy_its_workflow_cannot_run(admin_client, listed):
    # The workflow no longer supplies the timeframes this strategy left to it.
    Workflow.objects.filter(pk=listed.workflow_id).update(default_params={})
    ready = strategy_create(name="Ready", type="two_indicator", workflow=None,
                            codes=[CodeFactory(symbol="SPY")])  # fmt: skip
    response = admin_client.post("/admin/strategies/strategy/", {
        "action": "run_now", "_selected_action": [listed.pk, ready.pk],
    }, secure=True, follow=True)  # fmt: skip
    page = response.content.decode()
    assert "Trend did not run: The strategy is not valid. (param.bar_1: is required by the " \
           "workflow" in page  # fmt: skip
    assert not WorkflowExecution.objects.filter(strategy=listed).exists()
    started = WorkflowExecution.objects.get(strategy=ready)
    assert f'Started execution <a href="/admin/workflows/workflowexecution/{started.pk}' in page


def test_the_run_now_button_on_the_strategy_page(admin_client, listed):
    page = admin_client.get(f"/admin/strategies/strategy/{listed.pk}/change/", secure=True)
    html = page.content.decode()
    assert f'action="/admin/strategies/strategy/{listed.pk}/do/run_now/"' in html
    assert f'action="/admin/strategies/strategy/{listed.pk}/do/pause/"' in html
    assert "/do/resume/" not in html  # it is active
    response = admin_client.post(f"/admin/strategies/strategy/{listed.pk}/do/run_now/",
                                 secure=True)  # fmt: skip
    execution = WorkflowExecution.objects.get(strategy=listed)
    assert response["Location"].endswith(
        f"/admin/workflows/workflowexecution/{execution.pk}/change/"
    )
    assert admin_client.get(f"/admin/strategies/strategy/{listed.pk}/do/run_now/",
                            secure=True).status_code == 405  # fmt: skip
    unknown = admin_client.post(f"/admin/strategies/strategy/{listed.pk}/do/delete_selected/",
                                secure=True)  # fmt: skip
    assert unknown.status_code == 404  # an action of the list, not one of the page's buttons
    assert admin_client.post(f"/admin/strategies/strategy/{listed.pk}/do/nothing/",
                             secure=True).status_code == 404  # fmt: skip


def test_pause_and_resume_disable_and_enable_the_schedule(admin_client, listed):
    response = admin_client.post("/admin/strategies/strategy/", {
        "action": "pause", "_selected_action": [listed.pk],
    }, secure=True, follow=True)  # fmt: skip
    listed.refresh_from_db()
    assert not listed.active and not PeriodicTask.objects.get(pk=listed.periodic_task_id).enabled
    assert "Paused Trend." in response.content.decode()
    assert "every 15 min (paused)" in response.content.decode()
    response = admin_client.post(f"/admin/strategies/strategy/{listed.pk}/do/resume/",
                                 secure=True, follow=True)  # fmt: skip
    listed.refresh_from_db()
    assert listed.active and PeriodicTask.objects.get(pk=listed.periodic_task_id).enabled
    assert "Resumed Trend." in response.content.decode()


def test_resuming_a_strategy_without_a_schedule_says_no_run_starts_on_its_own(admin_client, listed):
    Strategy.objects.filter(pk=listed.pk).update(schedule_interval_minutes=None, active=False)
    response = admin_client.post(f"/admin/strategies/strategy/{listed.pk}/do/resume/",
                                 secure=True, follow=True)  # fmt: skip
    page = response.content.decode()
    assert "Resumed Trend." in page
    assert "Trend: no schedule, so no run starts on its own" in page


def test_clone_copies_codes_and_parameters_and_starts_paused(admin_client, listed):
    response = admin_client.post(f"/admin/strategies/strategy/{listed.pk}/do/clone/",
                                 secure=True, follow=True)  # fmt: skip
    copy = Strategy.objects.get(name="Trend (Copy)")
    assert response.redirect_chain[-1][0].endswith(f"/admin/strategies/strategy/{copy.pk}/change/")
    assert "Cloned Trend as" in response.content.decode()
    assert set(copy.codes.values_list("symbol", flat=True)) == {"AAPL", "MSFT"}
    assert (copy.workflow, copy.param, copy.active) == (listed.workflow, listed.param, False)
    assert not PeriodicTask.objects.get(pk=copy.periodic_task_id).enabled


def test_a_clone_of_a_strategy_whose_name_fills_its_column_is_named_to_fit(admin_client, listed):
    Strategy.objects.filter(pk=listed.pk).update(name="T" * 200)
    response = admin_client.post(f"/admin/strategies/strategy/{listed.pk}/do/clone/",
                                 secure=True, follow=True)  # fmt: skip
    assert response.status_code == 200
    copy = Strategy.objects.exclude(pk=listed.pk).get()
    assert copy.name == "T" * 192 + "… (Copy)"
    assert f"Cloned {'T' * 200} as" in response.content.decode()


def test_clone_refuses_a_strategy_its_workflow_no_longer_fits(admin_client, listed):
    Workflow.objects.filter(pk=listed.workflow_id).update(default_params={})
    for request in (
        {"path": f"/admin/strategies/strategy/{listed.pk}/do/clone/", "data": {}},
        {"path": "/admin/strategies/strategy/",
         "data": {"action": "clone", "_selected_action": [listed.pk]}},
    ):  # fmt: skip
        response = admin_client.post(**request, secure=True, follow=True)
        assert response.status_code == 200
        assert "Trend was not cloned: The strategy is not valid. (param.bar_1: is required by " \
               "the workflow" in response.content.decode()  # fmt: skip
    assert list(Strategy.objects.values_list("name", flat=True)) == ["Trend"]


def test_a_button_on_a_strategy_that_is_not_there_is_not_found(admin_client, listed):
    for object_id in ("abc", "2000000000", "99999999999999999999"):
        response = admin_client.post(f"/admin/strategies/strategy/{object_id}/do/pause/",
                                     secure=True)  # fmt: skip
        assert response.status_code == 404


def test_a_strategy_its_workflow_no_longer_fits_can_still_be_paused(admin_client, listed):
    Workflow.objects.filter(pk=listed.workflow_id).update(default_params={})
    response = admin_client.post(f"/admin/strategies/strategy/{listed.pk}/do/pause/",
                                 secure=True, follow=True)  # fmt: skip
    assert "Paused Trend." in response.content.decode()
    listed.refresh_from_db()
    assert not listed.active and not PeriodicTask.objects.get(pk=listed.periodic_task_id).enabled
    response = admin_client.post(f"/admin/strategies/strategy/{listed.pk}/do/resume/",
                                 secure=True, follow=True)  # fmt: skip
    page = response.content.decode()
    assert "Trend: The strategy is not valid. (param.bar_1: is required" in page
    listed.refresh_from_db()
    assert not listed.active and not PeriodicTask.objects.get(pk=listed.periodic_task_id).enabled


def test_deleting_a_strategy_with_history_is_refused_naming_the_runs(admin_client, listed):
    ExecutionFactory(strategy=listed, workflow=listed.workflow)
    response = admin_client.post(f"/admin/strategies/strategy/{listed.pk}/delete/",
                                 {"post": "yes"}, secure=True, follow=True)  # fmt: skip
    page = response.content.decode()
    assert "Cannot delete strategy" in page
    assert '<ul id="deleted-objects">\t<li>workflow execution</li></ul>' in page
    assert Strategy.objects.filter(pk=listed.pk).exists()


def test_deleting_an_unused_strategy_removes_its_schedule(admin_client, listed):
    task_id = listed.periodic_task_id
    response = admin_client.post(f"/admin/strategies/strategy/{listed.pk}/delete/",
                                 {"post": "yes"}, secure=True, follow=True)  # fmt: skip
    assert "was deleted successfully" in response.content.decode()
    assert not Strategy.objects.filter(pk=listed.pk).exists()
    assert not PeriodicTask.objects.filter(pk=task_id).exists()


def test_decisions_are_read_only_and_link_code_strategy_execution_and_order(admin_client):
    decision = make_decision()
    order = make_fill(decision=decision, instrument=decision.code)
    page = admin_client.get("/admin/strategies/decision/", secure=True).content.decode()
    assert f'href="/admin/orders/order/{order.pk}/change/">order #{order.pk}</a>' in page
    assert f'href="/admin/marketdata/code/{decision.code_id}/change/"' in page
    detail = admin_client.get(f"/admin/strategies/decision/{decision.pk}/change/", secure=True)
    html = detail.content.decode()
    assert f"/admin/orders/order/{order.pk}/change/" in html
    assert 'name="_save"' not in html  # nothing to save: the run made it
    assert admin_client.get("/admin/strategies/decision/add/", secure=True).status_code == 403


def test_decisions_are_searched_by_symbol(admin_client):
    make_decision(code=CodeFactory(symbol="NVDA"))
    make_decision(code=CodeFactory(symbol="TSLA"))
    page = admin_client.get("/admin/strategies/decision/?q=nvd", secure=True).content.decode()
    assert ">NVDA</a>" in page and ">TSLA</a>" not in page


def test_a_strategys_codes_are_one_compact_multi_select(admin_client, listed):
    html = admin_client.get(f"/admin/strategies/strategy/{listed.pk}/change/", secure=True)
    html = " ".join(html.content.decode().split())
    field = html[html.index('<select name="traded_codes"') :]
    field = field[: field.index("</select>")]
    assert "multiple" in field and 'data-field-name="codes"' in field  # select2, as typed
    for code in listed.codes.order_by("symbol"):
        assert f'<option value="{code.pk}" selected>{code}</option>' in field
    assert "strategycode_set" not in html  # no longer one dropdown row per code


def test_a_strategy_page_links_to_its_decisions_orders_positions_and_runs(admin_client, listed):
    aapl = listed.codes.get(symbol="AAPL")
    ours = make_fill(decision=make_decision(strategy=listed, code=aapl), instrument=aapl)
    other = make_decision()
    theirs = make_fill(decision=other, instrument=other.code)
    run, other_run = ExecutionFactory(strategy=listed), ExecutionFactory(strategy=other.strategy)
    html = admin_client.get(f"/admin/strategies/strategy/{listed.pk}/change/", secure=True)
    html = html.content.decode()
    conids = ",".join(str(conid) for conid in listed.codes.values_list("conid", flat=True))
    links = {
        "decisions": f"/admin/strategies/decision/?strategy__id__exact={listed.pk}",
        "orders": f"/admin/orders/order/?strategy={listed.pk}",
        "runs": f"/admin/workflows/workflowexecution/?strategy__id__exact={listed.pk}",
        "positions in its codes": f"/admin/orders/position/?instrument__in={conids}",
    }
    for text, url in links.items():
        assert f'<a href="{url}">{text}</a>' in html
    shown = {
        text: admin_client.get(url, secure=True).content.decode() for text, url in links.items()
    }
    assert f"/decision/{ours.decision_id}/change/" in shown["decisions"]
    assert f"/decision/{other.pk}/change/" not in shown["decisions"]
    assert f"/order/{ours.pk}/change/" in shown["orders"]
    assert f"/order/{theirs.pk}/change/" not in shown["orders"]
    assert f"/workflowexecution/{run.pk}/change/" in shown["runs"]
    assert f"/workflowexecution/{other_run.pk}/change/" not in shown["runs"]
    assert ">AAPL (" in shown["positions in its codes"]
    assert f">{other.code.symbol} (" not in shown["positions in its codes"]


def test_a_decision_is_titled_with_its_symbol(admin_client):
    decision = make_decision(code=CodeFactory(symbol="SPY"), current_price="559.050000")
    html = admin_client.get(f"/admin/strategies/decision/{decision.pk}/change/", secure=True)
    html = html.content.decode()
    assert f"<h2>Decision #{decision.pk}: buy SPY @ 559.05</h2>" in html
    breadcrumbs = html[html.index('<div class="breadcrumbs">') :].split("</div>")[0]
    assert f"Decision #{decision.pk}: buy SPY @ 559.05" in breadcrumbs


def test_a_decision_reads_like_money_in_the_list_and_on_its_page(admin_client):
    sound = make_decision(current_price="540.82", target_price="560.5", stop_loss="530.98")
    hold = make_decision(type="hold", current_price="100", target_price=None, stop_loss=None)
    listing = admin_client.get("/admin/strategies/decision/", secure=True).content.decode()
    assert '<td class="field-current_price_shown">540.82</td>' in listing
    # r = (560.5 - 540.82) / (530.98 - 540.82) = -2: a reward twice the risk
    assert '<td class="field-r_coefficient_shown">2.0 R</td>' in listing
    assert '<td class="field-profit_margin_shown">3.64%</td>' in listing
    assert '<td class="field-r_coefficient_shown">no target</td>' in listing
    assert ">Reward / risk</a>" in listing
    page = admin_client.get(f"/admin/strategies/decision/{sound.pk}/change/", secure=True)
    page = " ".join(page.content.decode().split())
    assert '<div class="readonly">560.50</div>' in page
    assert "540.820000" not in page and "None" not in page
    assert hold.r_coefficient is None


@pytest.mark.parametrize("value", ["abc", "\x00", "-1", "99999999999999999999"])
def test_codes_that_are_not_ids_are_refused_at_the_field(admin_client, value):
    workflow = Workflow.objects.get(type="two_indicator")
    data = add_form(workflow, [], traded_codes=[value])
    response = admin_client.post("/admin/strategies/strategy/add/", data, secure=True)
    assert response.status_code == 200
    assert "traded_codes" in response.context["adminform"].form.errors
    assert not Strategy.objects.filter(name="Admin made").exists()
