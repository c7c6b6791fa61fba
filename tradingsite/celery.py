"""The Celery app, configured from Django settings (``CELERY_`` namespace)."""

import logging
import os
import sys

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingsite.settings")

logger = logging.getLogger(__name__)

app = Celery("tradingsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Celery's Django fixup closes every database connection before and after each task (a new
# PostgreSQL session per run) unless told to reuse them: it closes them only every this many
# tasks, and the handlers below apply Django's own rules instead (CONN_MAX_AGE, and the health
# check of CONN_HEALTH_CHECKS before the connection's first use in a task).
app.conf.CELERY_DB_REUSE_MAX = 1_000_000
app.autodiscover_tasks()


def _forks_its_pool(worker):
    """Whether the worker's tasks run in forked pool processes (prefork), not in its main
    process (solo, threads)."""
    pool = getattr(worker, "pool_cls", None)
    name = pool if isinstance(pool, str) else getattr(pool, "__module__", "")
    return "prefork" in name or name == "processes"


@signals.worker_init.connect
def lease_an_ib_client_id(sender=None, **kwargs):
    """A worker leases its IB client id as it starts (tradingsite/broker/leases.py): a
    malformed or exhausted IBKR_CLIENT_ID_RANGE, or Redis down, stops it here with that
    message, before it takes any task.

    Only a process that talks to IB holds an id. The main process of a prefork worker runs no
    task: it leases none, and only checks that its pool processes will find one each; they
    lease theirs as they start (below)."""
    # Imported when a worker starts: this module is imported (tradingsite/__init__.py) before
    # Django is set up, and these need its settings and models.
    from tradingsite.broker import client_role  # when the worker starts (see above)
    from tradingsite.broker.leases import ClientIdUnavailable, lease_check  # (see above)

    client_role("worker")
    try:
        if _forks_its_pool(sender):
            lease_check(wanted=sender.concurrency or 1)
            return
        _connect_under_a_leased_id()
    except ClientIdUnavailable as exc:
        print(f"Refusing to start the worker: {exc}", file=sys.stderr)
        sys.exit(1)


@signals.worker_process_init.connect
def lease_an_ib_client_id_in_the_pool_process(**kwargs):
    """A prefork pool process leases its own id as it starts. One that finds none (another
    process took the last meanwhile) says so here, and again at each run that needs IB."""
    from tradingsite.broker.leases import ClientIdUnavailable  # Django is set up by now

    try:
        _connect_under_a_leased_id()
    except ClientIdUnavailable as exc:
        logger.error("IB not connected: %s", exc)


def _connect_under_a_leased_id():
    """Lease this process's id and connect, so that every process that runs tasks shows at
    the gateway under its id from the start (a gateway that is down is connected to at the
    first task that needs it)."""
    from tradingsite.broker import BrokerUnavailable, get_broker  # Django is set up by now
    from tradingsite.broker.leases import ClientIdUnavailable, lease_client_id

    lease_client_id()
    try:
        get_broker()
    except ClientIdUnavailable:
        raise
    except BrokerUnavailable as exc:
        logger.warning("IB not connected yet: %s", exc)


@signals.worker_process_shutdown.connect
@signals.worker_shutdown.connect
def give_the_ib_client_id_back(**kwargs):
    from tradingsite.broker import reset_broker  # in the handler: Django is set up by now

    reset_broker()


@signals.task_prerun.connect
@signals.task_postrun.connect
def keep_or_renew_the_database_connection(task=None, **kwargs):
    """As Django does around each request: a connection past CONN_MAX_AGE, or found broken,
    is closed (a new one is opened at the next query); a live one is kept, checked at its
    next use. A task run eagerly, in its caller's process, shares the caller's connection
    (a test's transaction): that one is the caller's to manage, as Django's test client
    leaves it alone."""
    from django.db import close_old_connections  # Django is set up once a task runs

    if task is not None and task.request.is_eager:
        return
    close_old_connections()


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
