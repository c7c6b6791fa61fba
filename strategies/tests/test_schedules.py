"""A strategy's schedule is exactly one django-celery-beat PeriodicTask, kept in step."""

import json

import pytest
from django_celery_beat.models import PeriodicTask

from marketdata.tests.factories import CodeFactory
from strategies.services import strategy_delete, strategy_pause
from tradingsite.exceptions import ApplicationError
from workflows.services import strategy_create, strategy_resume, strategy_update

pytestmark = pytest.mark.django_db


def strategy_tasks():
    return PeriodicTask.objects.filter(task="workflows.tasks.run_workflow")


def test_saving_pausing_and_deleting_keep_one_periodic_task():
    strategy = strategy_create(
        name="Every 5", type="two_indicator", codes=[CodeFactory()], schedule_interval_minutes=5
    )
    task = strategy_tasks().get()
    assert json.loads(task.args) == [strategy.pk]
    assert (task.interval.every, task.interval.period, task.enabled) == (5, "minutes", True)
    assert task.expire_seconds == 300

    strategy = strategy_update(
        strategy=strategy, schedule_interval_minutes=None, schedule_crontab="30 14 * * 1-5"
    )
    task = strategy_tasks().get()
    assert task.interval is None
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("30", "14", "1-5")
    assert str(task.crontab.timezone) == "UTC"

    strategy_pause(strategy=strategy)
    assert strategy_tasks().get().enabled is False
    strategy_resume(strategy=strategy)
    assert strategy_tasks().get().enabled is True

    strategy_delete(strategy=strategy)
    assert not strategy_tasks().exists()


def test_no_schedule_no_task():
    strategy = strategy_create(name="Manual", type="two_indicator", codes=[CodeFactory()])
    assert strategy.periodic_task is None and not strategy_tasks().exists()
    strategy_update(strategy=strategy, schedule_interval_minutes=15)
    strategy_update(strategy=strategy, schedule_interval_minutes=None)
    assert not strategy_tasks().exists()


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        ({"schedule_crontab": "every day"}, "schedule_crontab"),
        ({"schedule_crontab": "61 * * * *"}, "schedule_crontab"),
        ({"schedule_interval_minutes": 5, "schedule_crontab": "* * * * *"}, "schedule_crontab"),
        ({"schedule_interval_minutes": 0}, "schedule_interval_minutes"),
    ],
)
def test_bad_schedules_name_the_field(schedule, field):
    with pytest.raises(ApplicationError) as refused:
        strategy_create(name="Bad", type="two_indicator", codes=[CodeFactory()], **schedule)
    assert field in refused.value.extra
    assert not strategy_tasks().exists()


def test_the_fixed_jobs_are_in_beat():
    names = set(PeriodicTask.objects.values_list("task", flat=True))
    assert {
        "orders.tasks.orders_reconcile_task",
        "marketdata.tasks.market_data_purge_task",
        "marketdata.tasks.bars_sync_task",
        "workflows.tasks.executions_sweep_task",
        "workflows.tasks.workflow_metrics_task",
    } <= names
    sweep = PeriodicTask.objects.get(task="workflows.tasks.executions_sweep_task")
    assert (sweep.interval.every, sweep.interval.period) == (1, "minutes")
