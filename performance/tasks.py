from celery import shared_task

from .services import performance_snapshot_all


@shared_task
def performance_snapshot_task():
    return {"snapshots": performance_snapshot_all()}
