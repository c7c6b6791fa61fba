"""The Celery app, configured from Django settings (``CELERY_`` namespace)."""

import logging
import os
import sys

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingsite.settings")

logger = logging.getLogger(__name__)

app = Celery("tradingsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
def lease_an_ib_client_id(sender=None, **kwargs):
    """A worker leases its IB client id as it starts (tradingsite/broker/leases.py): a
    malformed or exhausted IBKR_CLIENT_ID_RANGE, or Redis down, stops it here with that
    message, before it takes any task. It connects to IB at its first request. (A prefork
    pool's processes lease their own as they first talk to IB.)"""
    # Imported when a worker starts: this module is imported (tradingsite/__init__.py) before
    # Django is set up, and these need its settings and models.
    from tradingsite.broker import client_role  # when the worker starts (see above)
    from tradingsite.broker.leases import ClientIdUnavailable, lease_client_id  # (see above)

    client_role("worker")
    try:
        lease_client_id()
    except ClientIdUnavailable as exc:
        print(f"Refusing to start the worker: {exc}", file=sys.stderr)
        sys.exit(1)
    pool = getattr(sender, "pool_cls", None)
    if "solo" in (pool if isinstance(pool, str) else getattr(pool, "__module__", "")):
        # The solo pool runs its tasks in this very process: connect now, so that every
        # worker shows at the gateway under its id from the start (a gateway that is down is
        # connected to at the first task that needs it).
        from tradingsite.broker import BrokerUnavailable, get_broker  # Django is set up by now

        try:
            get_broker()
        except BrokerUnavailable as exc:
            logger.warning("IB not connected yet: %s", exc)


@signals.worker_process_shutdown.connect
@signals.worker_shutdown.connect
def give_the_ib_client_id_back(**kwargs):
    from tradingsite.broker import reset_broker  # in the handler: Django is set up by now

    reset_broker()


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
