"""A strategy's schedule as exactly one django-celery-beat PeriodicTask.

Beat (DatabaseScheduler) notices a change through ``PeriodicTask.save()`` / ``delete()``;
every change here goes through them, never through ``QuerySet.update()``.
"""

import json

from celery.schedules import ParseException
from celery.schedules import crontab as celery_crontab
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from tradingsite.exceptions import ApplicationError
from tradingsite.schedules import schedule_row

RUN_TASK = "workflows.tasks.run_workflow"
CRONTAB_EXPIRY_SECONDS = 300
# A PeriodicTask expires a run after its interval (in seconds, a 32-bit column): a year is
# more than any strategy needs and keeps that number in range.
MAX_INTERVAL_MINUTES = 525_600
CRONTAB_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")


def crontab_fields(expression):
    """``"*/15 13-20 * * 1-5"`` as CrontabSchedule fields, or an error naming the field."""
    parts = (expression or "").split()
    if len(parts) != 5:
        raise ApplicationError(
            "The crontab needs five fields.",
            extra={"schedule_crontab": "Use 'minute hour day-of-month month day-of-week'."},
        )
    fields = dict(zip(CRONTAB_FIELDS, parts, strict=True))
    for name, value in fields.items():
        # Beat stores each field in a column of its own, some only 64 characters wide.
        width = CrontabSchedule._meta.get_field(name).max_length
        if len(value) > width:
            raise ApplicationError(
                "The crontab is not valid.",
                extra={"schedule_crontab": f"The {name} field is longer than {width} characters."},
            )
    try:
        celery_crontab(**fields)
    except (ValueError, ParseException) as exc:
        # Trap: celery's parser raises ParseException, not ValueError, for "-1" or "1,,2".
        raise ApplicationError(
            "The crontab is not valid.", extra={"schedule_crontab": str(exc)}
        ) from None
    return fields


def schedule_check(*, interval_minutes, crontab):
    if interval_minutes and crontab:
        raise ApplicationError(
            "A strategy has one schedule.",
            extra={"schedule_crontab": "Give an interval or a crontab, not both."},
        )
    if interval_minutes is not None and int(interval_minutes) < 1:
        raise ApplicationError(
            "The interval is too short.",
            extra={"schedule_interval_minutes": "Must be at least 1 minute."},
        )
    if interval_minutes is not None and int(interval_minutes) > MAX_INTERVAL_MINUTES:
        raise ApplicationError(
            "The interval is too long.",
            extra={
                "schedule_interval_minutes": f"Must be at most {MAX_INTERVAL_MINUTES} minutes "
                "(a year)."
            },
        )
    if crontab:
        crontab_fields(crontab)


def strategy_schedule_sync(*, strategy):
    """Create, change, disable or remove the strategy's PeriodicTask to match the strategy."""
    task = strategy.periodic_task
    if not strategy.schedule_interval_minutes and not strategy.schedule_crontab:
        if task is not None:
            strategy.periodic_task = None
            strategy.save(update_fields=["periodic_task"])
            task.delete()
        return None
    task = task or PeriodicTask(name=f"strategy {strategy.pk}")
    task.task = RUN_TASK
    task.args = json.dumps([strategy.pk])
    task.description = f"Runs the workflow of strategy {strategy.name!r}"
    task.enabled = strategy.active
    if strategy.schedule_interval_minutes:
        task.interval = schedule_row(
            IntervalSchedule,
            every=strategy.schedule_interval_minutes,
            period=IntervalSchedule.MINUTES,
        )
        task.crontab = None
        # A run not started within its interval is dropped, so a backed-up queue never piles up.
        task.expire_seconds = strategy.schedule_interval_minutes * 60
    else:
        task.crontab = schedule_row(
            CrontabSchedule, **crontab_fields(strategy.schedule_crontab), timezone="UTC"
        )
        task.interval = None
        task.expire_seconds = CRONTAB_EXPIRY_SECONDS
    task.save()
    if strategy.periodic_task_id != task.pk:
        strategy.periodic_task = task
        strategy.save(update_fields=["periodic_task"])
    return task


def strategy_schedule_remove(*, strategy):
    if strategy.periodic_task_id:
        task = strategy.periodic_task
        strategy.periodic_task = None
        task.delete()
