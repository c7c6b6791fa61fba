from celery import shared_task

from .services import orders_reconcile


@shared_task
def orders_reconcile_task():
    return orders_reconcile()
