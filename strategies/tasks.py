"""Celery tasks: each takes ids, loads them, and calls a service."""

from celery import shared_task


@shared_task
def decisions_purge_task():
    from .services import decisions_purge

    return decisions_purge()
