"""The Celery app, configured from Django settings (``CELERY_`` namespace)."""

import os
import sys

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingsite.settings")

app = Celery("tradingsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
def connect_to_ib_as_a_worker(**kwargs):
    """Workers take their own IB client ids, beside the web process's (see CLIENT_ID_OFFSETS)."""
    # Imported when a worker starts: this module is imported (tradingsite/__init__.py) before
    # Django is set up, and these need its settings and models.
    from tradingsite.broker import client_role  # when the worker starts (see above)

    client_role("worker")


@signals.worker_init.connect
def refuse_unready_database(**kwargs):
    """A worker on a database behind its migrations would fail task after task, far from the
    cause: it refuses to start instead, saying what to run.

    Celery logs and swallows a receiver's exceptions, so the refusal is an exit, not a raise.
    """
    from tradingsite.startup import readiness_problem  # once Django is set up (above)

    problem = readiness_problem()
    if problem:
        print(f"Refusing to start the worker: {problem}", file=sys.stderr)
        sys.exit(1)
