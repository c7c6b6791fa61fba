import json

import pytest
from django_celery_beat.models import PeriodicTask

from marketdata.tests.factories import CodeFactory
from strategies.models import Strategy
from workflows.models import Workflow

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
        "strategycode_set-TOTAL_FORMS": str(len(codes)),
        "strategycode_set-INITIAL_FORMS": "0",
    }
    for index, code in enumerate(codes):
        data[f"strategycode_set-{index}-code"] = code.pk
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
