"""Timing limits that must agree: a step never outlasts the strategy's run lock, and the broker
never hands a run to a second worker while the first may still be running it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tradingsite.exceptions import ApplicationError
from workflows.models import Workflow
from workflows.services import workflow_create

ROOT = Path(__file__).resolve().parents[2]

STEPS = [
    {"type": "fetch_data", "config": {"period": "1 Y", "bar": "1 day"}},
    {"type": "decide", "config": {}},
]


@pytest.mark.django_db
def test_a_wait_longer_than_the_run_lock_allows_is_refused_naming_step_and_field():
    with pytest.raises(ApplicationError) as refused:
        workflow_create(
            name="Patient", steps=[*STEPS, {"type": "wait", "config": {"seconds": 900}}]
        )
    assert refused.value.extra["steps"] == [
        "step 3 (wait): seconds: must be at most 300 (a run holds its strategy's lock for "
        "600 s from one step to the next)"
    ]
    assert not Workflow.objects.filter(name="Patient").exists()

    workflow = workflow_create(
        name="Paced", steps=[*STEPS, {"type": "wait", "config": {"seconds": 300}}]
    )
    assert workflow.steps[2]["config"]["seconds"] == 300


def celery_timing(**environment):
    """The Celery limits a worker started with ``environment`` would use."""
    program = (
        "import json, django\n"
        "from tradingsite.celery import app\n"
        "django.setup()\n"
        "from workflows.tasks import run_workflow\n"
        "print(json.dumps({'transport': app.conf.broker_transport_options,\n"
        "    'soft': run_workflow.soft_time_limit, 'hard': run_workflow.time_limit}))\n"
    )
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/"), "TESTING": "true",
           **environment}  # fmt: skip
    result = subprocess.run([sys.executable, "-c", program], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize("max_runtime", ["3600", "7200"])
def test_redis_hands_a_run_to_another_worker_only_after_it_must_have_ended(max_runtime):
    timing = celery_timing(REDIS_URL="redis://127.0.0.1:6379/7",
                           WORKFLOW_MAX_RUNTIME_SECONDS=max_runtime)  # fmt: skip
    # The run is stopped (it fails, saying why) at the longest runtime, killed a little later,
    # and only after that does Redis deliver its unacknowledged message again.
    assert timing["soft"] == int(max_runtime)
    assert timing["soft"] < timing["hard"] < timing["transport"]["visibility_timeout"]


def test_without_redis_the_broker_keeps_its_defaults():
    timing = celery_timing()
    assert "visibility_timeout" not in timing["transport"]
    assert timing["soft"] == 3600 < timing["hard"]
