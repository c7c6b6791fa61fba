"""A strategy's schedule as exactly one django-celery-beat PeriodicTask.

Beat (DatabaseScheduler) notices a change through ``PeriodicTask.save()`` / ``delete()``;
every change here goes through them, never through ``QuerySet.update()``.
"""

import json

from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from tradingsite.exceptions import ApplicationError

RUN_TASK = "workflows.tasks.run_workflow"
CRONTAB_EXPIRY_SECONDS = 300


def crontab_fields(expression):
    """``"*/15 13-20 * * 1-5"`` as CrontabSchedule fields, or an error naming the field."""
    parts = (expression or "").split()
    if len(parts) != 5:
        raise ApplicationError(
            "The crontab needs five fields.",
            extra={"schedule_crontab": "Use 'minute hour day-of-month month day-of-week'."},
        )
    fields = dict(zip(("minute", "hour", "day_of_month", "month_of_year", "day_of_week"),
                      parts, strict=True))  # fmt: skip
    try:
        from celery.schedules import crontab

        crontab(**fields)
    except ValueError as exc:
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
        task.interval, _ = IntervalSchedule.objects.get_or_create(
            every=strategy.schedule_interval_minutes, period=IntervalSchedule.MINUTES
        )
        task.crontab = None
        # A run not started within its interval is dropped, so a backed-up queue never piles up.
        task.expire_seconds = strategy.schedule_interval_minutes * 60
    else:
        task.crontab, _ = CrontabSchedule.objects.get_or_create(
            **crontab_fields(strategy.schedule_crontab), timezone="UTC"
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
