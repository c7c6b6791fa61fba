import json

import pytest

from workflows.models import Workflow
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
    return Workflow.objects.get(type="two_indicator")


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
