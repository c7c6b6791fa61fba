"""`manage.py load_demo` and `ensure_admin`, as `make run` calls them on every start."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from strategies.models import Strategy
from workflows.models import Workflow

pytestmark = pytest.mark.django_db


def test_the_demo_loads_once_and_is_scheduled(capsys):
    call_command("load_demo")
    call_command("load_demo")
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("(created).") and out[1].endswith("(already there).")

    strategy = Strategy.objects.get()
    assert sorted(strategy.codes.values_list("symbol", flat=True)) == ["AAPL", "MSFT", "SPY"]
    assert strategy.workflow.type == "two_indicator" and strategy.active
    assert Workflow.objects.filter(type="two_indicator").count() == 1
    task = PeriodicTask.objects.get(pk=strategy.periodic_task_id)
    assert (task.enabled, task.interval.every, task.interval.period) == (True, 1, "minutes")


def test_the_admin_password_is_printed_only_when_created(capsys):
    call_command("ensure_admin")
    call_command("ensure_admin")
    first, second = capsys.readouterr().out.splitlines()
    password = first.split(" / ")[1].split()[0]
    assert get_user_model().objects.get(username="admin").check_password(password)
    assert password not in second
