"""The fault suite's tools: a private Redis that can be restarted, Celery workers as real
processes that can be killed, and the invariants a fault must leave intact, checked against
the gateway's own book through an IB client of their own."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis
from django.conf import settings
from django.db import connection

from orders.models import Order, OrderStatus
from tradingsite.broker.ib import IBBroker
from tradingsite.celery import app
from workflows.models import WorkflowExecution
from workflows.tasks import run_workflow

FINAL = ("completed", "failed", "cancelled")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def eventually(condition, *, timeout, interval=0.1):
    """Poll ``condition()`` until it holds (returns its value) or ``timeout`` seconds pass
    (returns the last falsy value)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


class RedisServer:
    """A ``redis-server`` of the test's own on a spare port, without persistence: a restart
    loses every key and message, as a Redis without a disk does."""

    def __init__(self, workdir):
        self.binary = shutil.which("redis-server")
        self.port = free_port()
        self.workdir = Path(workdir)
        self.process = None

    def url(self, db=0):
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self):
        log = open(self.workdir / f"redis-{self.port}.log", "ab")  # noqa: SIM115 - kept open
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        if not eventually(lambda: self._answers(client), timeout=10, interval=0.05):
            raise RuntimeError(f"redis-server on port {self.port} did not start")

    @staticmethod
    def _answers(client):
        try:
            return client.ping()
        except redis.RedisError:
            return False

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def restart(self):
        self.stop()
        self.start()


class WorkerProcess:
    """``celery worker`` as a real process on the test database, with the given pool, broker
    and gateway. ``pool_pids()`` are its pool's processes (prefork)."""

    def __init__(self, *, pool, broker_url, gateway_port, client_id, workdir, concurrency=1):
        self.pool = pool
        self.log = Path(workdir) / f"worker-{pool}-{free_port()}.log"
        db = connection.settings_dict
        self.env = {
            **os.environ,
            "TESTING": "true",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "REDIS_URL": broker_url,
            "IBKR_HOST": "127.0.0.1",
            "IBKR_PORT": str(gateway_port),
            "IBKR_CLIENT_ID": str(client_id),
            "IBKR_PACING_CLOCK": "simulated",
            "MEDIA_ROOT": str(workdir),
        }
        self.concurrency = concurrency
        self.process = None

    def start(self, *, timeout=90):
        output = open(self.log, "ab")  # noqa: SIM115 - the process writes it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tradingsite", "worker", f"--pool={self.pool}",
             f"--concurrency={self.concurrency}", "--loglevel=INFO", "--without-gossip",
             "--without-mingle", "--without-heartbeat", "-n", f"fault-{free_port()}@%h"],
            cwd=settings.BASE_DIR, env=self.env, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
        ready = eventually(lambda: " ready." in self.output() or not self.alive(), timeout=timeout)
        if not ready or not self.alive():
            raise RuntimeError(f"the worker did not start:\n{self.output()[-3000:]}")
        return self

    def output(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def pool_pids(self):
        found = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.process.pid)], capture_output=True, text=True
        )
        return [int(pid) for pid in found.stdout.split()]

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self):
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


def send_run(execution, *, broker_url):
    """Queue ``execution`` (made with ``execution_prepare``) on the broker at ``broker_url``, as
    ``execution_start`` does on the site's own."""
    with app.connection_for_write(broker_url) as broker:
        run_workflow.apply_async(
            args=[execution.strategy_id, execution.workflow_id],
            kwargs={"execution_id": execution.pk, "dry_run": False},
            task_id=execution.task_id, connection=broker,
        )  # fmt: skip


def ib_book(*, port, client_id):
    """Every order the gateway reports (open and completed), through a connection of its own:
    {orderRef: [(IB order id, IB's status), ...]}."""
    book = {}
    broker = IBBroker(host="127.0.0.1", port=port, client_id=client_id, timeout=5).connect()
    try:
        # IB reports a completed order without its order id (0), as the TWS API does; its
        # executions carry it.
        executed = {report.order_ref: report.broker_order_id for report in broker.executions()}
        for status in broker.order_statuses():
            order_id = status.broker_order_id or executed.get(status.order_ref, 0)
            book.setdefault(status.order_ref, []).append((order_id, status.status))
    finally:
        broker.disconnect()
    return book


def invariants_broken(*, port, client_id):
    """What a fault left wrong, in words (empty when nothing):

    - every order row is at IB with the same IB order id, or ``rejected`` with its reason;
    - IB never has two orders of one row (no order placed twice);
    - no execution is left pending or running, and every failed one says why.
    """
    book = ib_book(port=port, client_id=client_id)
    problems = []
    for order in Order.objects.order_by("pk"):
        at_ib = book.get(f"ts-{order.pk}", [])
        if len(at_ib) > 1:
            problems.append(f"order {order.pk} is at IB {len(at_ib)} times: {at_ib}")
        if order.status == OrderStatus.REJECTED:
            if not order.error_message:
                problems.append(f"order {order.pk} is rejected without a reason")
        elif [ib_id for ib_id, _ in at_ib] != [order.ibkr_order_id]:
            problems.append(
                f"order {order.pk} is {order.status} as IB order {order.ibkr_order_id}, but IB "
                f"has {at_ib or 'nothing'}"
            )
    for execution in WorkflowExecution.objects.order_by("pk"):
        if execution.status not in FINAL:
            problems.append(f"execution {execution.pk} is still {execution.status}")
        elif execution.status == "failed" and not execution.error_message:
            problems.append(f"execution {execution.pk} failed without a reason")
    return problems
