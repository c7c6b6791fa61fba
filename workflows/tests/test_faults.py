"""The fault suite: runs of real Celery workers, each broken on purpose while it goes on (Redis
restarted, PostgreSQL's backends terminated, the gateway killed and started again, the worker
or its pool process SIGKILLed). Afterwards every order row must match the gateway's own book
(or be rejected with the reason), no order may be placed twice, and no run may be left pending
or running past its bound, nor fail without saying why."""

import os
import signal
import socket
import time

import pytest

from marketdata.services import code_resolve
from marketdata.tests.factories import cache_run_bars
from tradingsite.testing.faults import (
    RedisServer,
    WorkerProcess,
    eventually,
    invariants_broken,
    send_run,
)
from workflows.models import ExecutionStatus, WorkflowExecution
from workflows.services import execution_prepare, strategy_create, workflow_create
from workflows.templates import TEMPLATES

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

# A run that errs (an error its worker sees) ends within this many seconds.
ERROR_BOUND = 30


@pytest.fixture
def private_redis(tmp_path, settings):
    """A Redis of this test's own, the broker, result backend and run lock of its workers (and
    of this process's run lock checks)."""
    server = RedisServer(tmp_path)
    server.start()
    settings.REDIS_URL = server.url()
    yield server
    server.stop()


@pytest.fixture
def start_worker(gateway, private_redis, tmp_path, settings):
    """Start a worker process on the private Redis and this test's gateway; stopped after."""
    started = []

    def start(pool, *, concurrency=1):
        worker = WorkerProcess(
            pool=pool, broker_url=private_redis.url(), gateway_port=gateway.port,
            client_id=settings.IBKR_CLIENT_ID + 40 + 20 * len(started), workdir=tmp_path,
            concurrency=concurrency,
        )  # fmt: skip
        started.append(worker)
        return worker.start()

    yield start
    for worker in started:
        worker.stop()


def paced_strategy(symbols, gateway, *, pause=3):
    """The two-indicator workflow with a pause between codes (a window to break things in):
    codes the gateway knows, with rising cached bars and IB's price at their close, so that
    each one buys."""
    template = TEMPLATES["two_indicator"]
    steps = [*template["steps"], {"type": "wait", "config": {"seconds": pause}}]
    workflow = workflow_create(name=f"paced {'+'.join(symbols)}", type="custom", steps=steps,
                               default_params=template["default_params"])  # fmt: skip
    codes = []
    for symbol in symbols:
        code = code_resolve(symbol=symbol)
        cache_run_bars(code, gateway=gateway)
        codes.append(code)
    return strategy_create(name=f"paced {'+'.join(symbols)}", type="custom", workflow=workflow,
                           codes=codes)  # fmt: skip


def queue_run(strategy, redis_server):
    execution = execution_prepare(strategy=strategy)
    send_run(execution, broker_url=redis_server.url())
    return execution


def reloaded(execution):
    return WorkflowExecution.objects.get(pk=execution.pk)


def waiting_after_first_code(execution, *, timeout=90):
    """The run has placed its first code's order and pauses before the next code."""
    return eventually(
        lambda: (reloaded(execution).progress or {}).get("step_type") == "wait", timeout=timeout
    )


def ended(execution, *, timeout):
    """The execution once final, and the seconds it took from now."""
    started = time.monotonic()
    final = eventually(
        lambda: reloaded(execution).status not in ("pending", "running"), timeout=timeout
    )
    assert final, f"execution {execution.pk} still {reloaded(execution).status} after {timeout}s"
    return reloaded(execution), time.monotonic() - started


def book_problems(gateway, settings):
    return invariants_broken(port=gateway.port, client_id=settings.IBKR_CLIENT_ID + 90)


@pytest.mark.parametrize("pool", ["prefork", "solo"])
def test_a_redis_restart_mid_run_fails_that_run_and_the_worker_runs_the_next(
    pool, gateway, settings, private_redis, start_worker
):
    worker = start_worker(pool)
    strategy = paced_strategy(["AAPL", "MSFT", "SPY"], gateway)
    cut = queue_run(strategy, private_redis)
    assert waiting_after_first_code(cut), worker.output()[-3000:]

    private_redis.restart()  # every key and queued message is gone, as in a Redis without disk

    cut, seconds = ended(cut, timeout=ERROR_BOUND)
    assert cut.status == ExecutionStatus.FAILED and "Redis" in cut.error_message, cut.error_message
    later = queue_run(strategy, private_redis)
    later, _ = ended(later, timeout=90)
    assert later.status == ExecutionStatus.COMPLETED, (later.error_message, worker.output()[-3000:])
    assert worker.alive()
    assert book_problems(gateway, settings) == []


def terminate_other_backends():
    """pg_terminate_backend on every other session of the test database (the worker's)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def test_a_database_drop_mid_run_fails_the_run_with_the_reason(
    gateway, settings, private_redis, start_worker
):
    worker = start_worker("solo")
    strategy = paced_strategy(["AAPL", "MSFT", "SPY"], gateway)
    cut = queue_run(strategy, private_redis)
    assert waiting_after_first_code(cut), worker.output()[-3000:]

    assert terminate_other_backends() >= 1

    cut, seconds = ended(cut, timeout=ERROR_BOUND)
    assert cut.status == ExecutionStatus.FAILED, cut.error_message
    assert cut.error_message.startswith("Stopped: the database connection was lost")
    assert "administrator command" in cut.error_message  # PostgreSQL's own words
    assert cut.results["orders_placed"] == 1 and cut.completed_at is not None
    later = queue_run(strategy, private_redis)
    later, _ = ended(later, timeout=90)
    assert later.status == ExecutionStatus.COMPLETED, (later.error_message, worker.output()[-3000:])
    assert book_problems(gateway, settings) == []


def test_a_killed_solo_worker_is_named_by_the_sweep_and_its_lock_taken_over_at_once(
    gateway, settings, private_redis, start_worker
):
    from workflows.services import executions_sweep

    worker = start_worker("solo")
    strategy = paced_strategy(["AAPL", "MSFT", "SPY"], gateway)
    dead = queue_run(strategy, private_redis)
    assert waiting_after_first_code(dead), worker.output()[-3000:]
    worker_pid = worker.process.pid

    worker.kill()  # SIGKILL: no handler runs, the lock stays in Redis for up to 600 s

    assert reloaded(dead).status == ExecutionStatus.RUNNING
    assert executions_sweep() == 1  # beat's next sweep, within a minute
    dead = reloaded(dead)
    assert dead.status == ExecutionStatus.FAILED
    assert dead.error_message == (
        f"Stopped by the sweep: its worker process (pid {worker_pid} on "
        f"{socket.gethostname()}) is gone."
    )
    start_worker("solo")
    started = time.monotonic()
    later = queue_run(strategy, private_redis)  # not "Skipped: another run ... in progress"
    later, _ = ended(later, timeout=90)
    assert later.status == ExecutionStatus.COMPLETED, later.error_message
    assert later.started_at is not None and time.monotonic() - started < 90
    assert book_problems(gateway, settings) == []


def test_a_dead_runs_lock_is_taken_over_by_the_next_run_without_the_sweep(
    gateway, settings, private_redis, start_worker
):
    worker = start_worker("solo")
    strategy = paced_strategy(["AAPL", "MSFT"], gateway)
    dead = queue_run(strategy, private_redis)
    assert waiting_after_first_code(dead), worker.output()[-3000:]
    worker.kill()

    start_worker("solo")
    later, _ = ended(queue_run(strategy, private_redis), timeout=90)

    assert later.status == ExecutionStatus.COMPLETED, later.error_message
    dead = reloaded(dead)
    assert dead.status == ExecutionStatus.FAILED
    assert dead.error_message.startswith("Stopped: its worker process (pid ")
    assert dead.error_message.endswith("the strategy's next run took over its lock.")
    assert book_problems(gateway, settings) == []


def test_a_killed_pool_process_fails_its_run_and_frees_the_strategy(
    gateway, settings, private_redis, start_worker
):
    worker = start_worker("prefork")
    strategy = paced_strategy(["AAPL", "MSFT", "SPY"], gateway)
    dead = queue_run(strategy, private_redis)
    assert waiting_after_first_code(dead), worker.output()[-3000:]
    [child] = worker.pool_pids()

    os.kill(child, signal.SIGKILL)

    # The task comes back (late acks, rejected on worker lost) and is failed, not run again.
    dead, seconds = ended(dead, timeout=ERROR_BOUND)
    assert dead.status == ExecutionStatus.FAILED
    assert "worker running this execution was lost" in dead.error_message
    assert "no order is sent twice" in dead.error_message
    later, _ = ended(queue_run(strategy, private_redis), timeout=90)
    assert later.status == ExecutionStatus.COMPLETED, (later.error_message, worker.output()[-3000:])
    assert worker.alive()
    assert book_problems(gateway, settings) == []


def test_a_gateway_restart_mid_run_costs_the_run_no_order(
    gateway, settings, private_redis, start_worker
):
    worker = start_worker("solo")
    strategy = paced_strategy(["AAPL", "MSFT", "SPY"], gateway)
    execution = queue_run(strategy, private_redis)
    assert waiting_after_first_code(execution), worker.output()[-3000:]

    gateway.stop()  # killed, and back on its port; IB keeps its orders (the book stays)
    gateway.start()

    execution, _ = ended(execution, timeout=90)
    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    assert execution.error_message is None and execution.results["failed_symbols"] == []
    assert execution.results["orders_placed"] >= 2  # at least one sent after the restart
    assert book_problems(gateway, settings) == []
