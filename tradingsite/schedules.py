"""The site's fixed periodic jobs, declared here and kept in django-celery-beat's tables
(DatabaseScheduler), so the admin shows them and a person can pause one."""

import json

from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

PERIODIC_JOBS = {
    "orders: reconcile with the broker": ("orders.tasks.orders_reconcile_task", {"minutes": 5}),
    "market data: purge the expired cache": (
        "marketdata.tasks.market_data_purge_task",
        {"minutes": 60},
    ),
    "market data: sync the bar store from IB": (
        "marketdata.tasks.bars_sync_task",
        {"minutes": 60},
    ),
    "executions: fail the orphaned ones": (
        "workflows.tasks.executions_sweep_task",
        {"minutes": 1},
    ),
    "performance: strategy snapshots": (
        "performance.tasks.performance_snapshot_task",
        {"crontab": "*/15 * * * *"},
    ),
    # The day's own figures once the close's fills are in: five minutes after 16:00 in New
    # York, whatever its daylight saving time.
    "performance: snapshots after the close": (
        "performance.tasks.performance_snapshot_task",
        {"crontab": "5 16 * * 1-5", "timezone": "America/New_York"},
    ),
    "workflows: daily metrics": (
        "workflows.tasks.workflow_metrics_task",
        {"crontab": "15 * * * *"},
    ),
    # Retention (seed 002), daily at night in UTC; each returns what it deleted.
    "retention: decisions that led to no order": (
        "strategies.tasks.decisions_purge_task",
        {"crontab": "30 3 * * *"},
    ),
    "retention: performance snapshots, one a day past 180 days": (
        "performance.tasks.performance_snapshots_purge_task",
        {"crontab": "40 3 * * *"},
    ),
    "retention: execution logs": (
        "workflows.tasks.execution_logs_purge_task",
        {"crontab": "50 3 * * *"},
    ),
}


def schedule_row(model, **fields):
    """The beat schedule row (IntervalSchedule, CrontabSchedule) with these fields, made when
    there is none. Beat's tables have no unique constraint, so concurrent saves or its own
    admin can leave duplicates: the oldest is used (``get_or_create`` would fail with
    MultipleObjectsReturned)."""
    return model.objects.filter(**fields).order_by("pk").first() or model.objects.create(**fields)


def periodic_jobs_sync(**kwargs):
    """Create the jobs that are missing, and bring the interval of an existing one to the
    declared one; a job a person disabled stays disabled."""
    for name, (task, when) in PERIODIC_JOBS.items():
        existing = PeriodicTask.objects.filter(name=name).select_related("interval").first()
        if existing is not None:
            if (
                "minutes" in when
                and existing.interval
                and existing.interval.every != when["minutes"]
            ):
                existing.interval = schedule_row(
                    IntervalSchedule, every=when["minutes"], period=IntervalSchedule.MINUTES
                )
                existing.expire_seconds = when["minutes"] * 60
                existing.save()
            continue
        job = PeriodicTask(name=name, task=task, args=json.dumps([]))
        if "minutes" in when:
            job.interval = schedule_row(
                IntervalSchedule, every=when["minutes"], period=IntervalSchedule.MINUTES
            )
            job.expire_seconds = when["minutes"] * 60
        else:
            minute, hour, dom, month, dow = when["crontab"].split()
            job.crontab = schedule_row(
                CrontabSchedule, minute=minute, hour=hour, day_of_month=dom, month_of_year=month,
                day_of_week=dow, timezone=when.get("timezone", "UTC"),
            )  # fmt: skip
            job.expire_seconds = 3600
        job.save()
