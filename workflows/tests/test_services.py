import pytest

from tradingsite.exceptions import ApplicationError
from workflows.models import Workflow, WorkflowVersion
from workflows.services import workflow_clone, workflow_create, workflow_revert, workflow_update
from workflows.templates import TEMPLATES

pytestmark = pytest.mark.django_db

TWO = TEMPLATES["two_indicator"]


def two_indicator(created_by=None):
    return workflow_create(
        name="Swing",
        type="two_indicator",
        steps=TWO["steps"],
        default_params=TWO["default_params"],
        created_by=created_by,
    )


def test_create_writes_version_one_by_its_author(admin_user):
    workflow = two_indicator(created_by=admin_user)
    version = workflow.current_version
    assert (version.version_number, version.created_by, version.steps) == (1, "admin", TWO["steps"])


def test_each_change_of_steps_writes_the_next_version(admin_user):
    workflow = two_indicator()
    shorter = [step for step in TWO["steps"] if step["type"] != "generate_chart"]
    workflow = workflow_update(workflow=workflow, steps=shorter, created_by=admin_user)
    assert workflow.current_version.version_number == 2
    assert workflow.current_version.created_by == "admin"
    # a change that leaves the steps alone writes no version
    workflow = workflow_update(workflow=workflow, name="Swing daily", steps=shorter)
    assert workflow.versions.count() == 2
    assert Workflow.objects.get(pk=workflow.pk).name == "Swing daily"


def test_revert_writes_n_plus_one_with_the_old_steps():
    workflow = two_indicator()
    workflow_update(workflow=workflow, steps=TWO["steps"][:2] + TWO["steps"][3:])
    workflow = workflow_revert(workflow=workflow, version_number=1)
    latest = workflow.current_version
    assert (latest.version_number, latest.note, latest.steps) == (
        3,
        "Reverted from v1",
        TWO["steps"],
    )
    assert Workflow.objects.get(pk=workflow.pk).steps == TWO["steps"]


def test_revert_to_the_current_steps_writes_nothing():
    workflow = two_indicator()
    workflow_update(workflow=workflow, steps=TWO["steps"][:2] + TWO["steps"][3:])
    workflow_revert(workflow=workflow, version_number=1)
    with pytest.raises(ApplicationError) as refused:
        workflow_revert(workflow=workflow, version_number=3)  # the current version
    assert refused.value.extra == {
        "version_number": "Its steps are the current ones: nothing to revert."
    }
    with pytest.raises(ApplicationError):
        workflow_revert(workflow=workflow, version_number=1)  # the same steps as v3
    assert workflow.versions.count() == 3


def test_revert_to_a_missing_version_names_it():
    workflow = two_indicator()
    with pytest.raises(ApplicationError) as refused:
        workflow_revert(workflow=workflow, version_number=9)
    assert "version_number" in refused.value.extra
    assert workflow.versions.count() == 1


def test_clone_is_named_copy_with_its_own_history():
    workflow = two_indicator()
    clone = workflow_clone(workflow=workflow)
    assert clone.name == "Swing (Copy)"
    assert (clone.steps, clone.default_params) == (workflow.steps, workflow.default_params)
    assert list(clone.versions.values_list("version_number", "note")) == [
        (1, "Cloned from Swing v1")
    ]


def test_a_clone_of_a_workflow_whose_name_fills_its_column_is_named_to_fit():
    workflow = two_indicator()
    Workflow.objects.filter(pk=workflow.pk).update(name="W" * 195 + " tail")
    workflow.refresh_from_db()
    clone = workflow_clone(workflow=workflow)
    clone.refresh_from_db()
    assert clone.name == "W" * 192 + "… (Copy)"
    assert clone.versions.get().note == f"Cloned from {workflow.name} v1"


def test_invalid_steps_are_refused_naming_step_and_field():
    workflow = two_indicator()
    bad = [dict(step) for step in TWO["steps"]]
    bad[0] = {"type": "fetch_data", "config": {"period": "1 year", "bar": "1 day"}}
    with pytest.raises(ApplicationError) as refused:
        workflow_update(workflow=workflow, steps=bad)
    assert refused.value.extra["steps"] == [
        "step 1 (fetch_data): period: '1 year' is not an IB duration such as "
        '"1 Y", "6 M", "2 W" or "10 D".'
    ]
    assert WorkflowVersion.objects.filter(workflow=workflow).count() == 1


def test_an_order_needs_the_risk_gate_first():
    steps = [
        {"type": "fetch_data", "config": {"period": "1 Y", "bar": "1 day"}},
        {"type": "decide", "config": {}},
        {"type": "place_order", "config": {"order_type": "LMT"}},
    ]
    with pytest.raises(ApplicationError) as refused:
        workflow_create(name="Reckless", steps=steps)
    assert refused.value.extra["steps"] == [
        "step 3 (place_order): type: needs a validate_risk step before it"
    ]
    assert not Workflow.objects.filter(name="Reckless").exists()


def test_an_empty_custom_workflow_is_a_draft():
    workflow = workflow_create(name="Blank", type="custom", steps=[])
    assert workflow.current_version.steps == []


def test_a_chart_is_written_inside_the_media_folder_whatever_the_symbol(settings, tmp_path):
    from workflows.charts import chart_render

    settings.MEDIA_ROOT = tmp_path / "media"
    document = {"bars": {"close": [1.0, 2.0, 1.5]}}
    for symbol, name in [("../../../PWNED", "PWNED_1day.png"), ("/etc/x", "etc-x_1day.png"),
                         ("BRK B", "BRK-B_1day.png")]:  # fmt: skip
        path = chart_render(execution_id=4, symbol=symbol, bar="1 day", document=document)
        assert path == f"executions/4/{name}"
        assert (settings.MEDIA_ROOT / path).is_file()
    assert sorted(p.name for p in tmp_path.rglob("*.png")) == [
        "BRK-B_1day.png", "PWNED_1day.png", "etc-x_1day.png"
    ]  # fmt: skip


def test_a_chart_draws_the_lines_asked_for_in_their_colours(settings, tmp_path):
    from PIL import Image

    from marketdata.tests.factories import market_document
    from workflows.charts import BAND, COLOURS, chart_render

    settings.MEDIA_ROOT = tmp_path
    document = market_document(trend="up", bar="1 day")

    def colours(**kwargs):
        path = chart_render(execution_id=5, symbol="AAPL", bar="1 day", document=document,
                            **kwargs)  # fmt: skip
        image = Image.open(tmp_path / path)
        assert image.format == "PNG" and image.size == (800, 360)
        return {colour: count for count, colour in image.getcolors(maxcolors=800 * 360)}

    every = colours()
    # each line across the chart (more pixels than its legend's square), the band filled
    assert all(every.get(COLOURS[name], 0) > 150 for name in COLOURS), every
    assert every.get(BAND, 0) > 10000
    some = colours(indicators=["sma_20"])
    assert some.get(COLOURS["close"], 0) > 300 and some.get(COLOURS["sma_20"], 0) > 300
    assert COLOURS["sma_200"] not in some and BAND not in some


def test_a_chart_has_the_bars_dates_on_its_x_axis():
    from marketdata.tests.factories import market_document
    from workflows.charts import date_labels

    bars = market_document(bars=120)["bars"]  # daily bars from 2025-01-01 to 2025-04-30
    assert date_labels(bars["time"], count=120) == [
        (0, "2025-01-01"), (24, "2025-01-25"), (48, "2025-02-18"), (71, "2025-03-13"),
        (95, "2025-04-06"), (119, "2025-04-30"),
    ]  # fmt: skip
    hourly = [f"2025-03-14T{h:02d}:30:00+00:00" for h in range(14, 20)]
    assert date_labels(hourly, count=6, labels=3) == [
        (0, "2025-03-14 14:30"), (2, "2025-03-14 16:30"), (5, "2025-03-14 19:30"),
    ]  # fmt: skip
    assert date_labels(None, count=3) == []  # a document without times: no labels


def test_a_fetch_ib_would_refuse_is_refused_naming_the_step():
    from workflows.engine.validation import workflow_errors

    steps = [
        {"type": "fetch_data", "config": {"period": "100 Y", "bar": "1 day"}},
        {"type": "fetch_data", "config": {"period": "1 D", "bar": "1 week"}},
        {"type": "fetch_data", "config": {"period": "{{period_1}}", "bar": "1 day"}},
        {"type": "decide", "config": {}},
    ]
    assert [str(error) for error in workflow_errors(steps)] == [
        "step 1 (fetch_data): period: '100 Y' is longer than IB's history (30 Y at most).",
        "step 2 (fetch_data): period: IB gives '1 D' of history in bars of '1 day' or shorter, "
        "not '1 week'.",
    ]
