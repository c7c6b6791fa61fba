from celery import shared_task

from .services import performance_snapshot_all, performance_snapshots_purge


@shared_task
def performance_snapshot_task():
    return {"snapshots": performance_snapshot_all()}


@shared_task
def performance_snapshots_purge_task():
    return performance_snapshots_purge()
