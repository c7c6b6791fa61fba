"""Runs of one strategy never overlap, with the database as the lock (no Redis): runs that
start at the same moment, each in a thread with a connection of its own, as two workers."""

import threading

import pytest
from django.db import connection

from marketdata.services import code_resolve
from marketdata.tests.factories import CodeFactory, cache_run_bars
from strategies.models import Decision
from workflows.engine.locks import DatabaseRunLock, Start
from workflows.models import ExecutionStatus, WorkflowExecution
from workflows.services import execution_prepare, execution_run, strategy_create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def no_redis(settings, tmp_path):
    settings.REDIS_URL = ""  # the embedded default: the database is the run lock
    settings.MEDIA_ROOT = tmp_path


def strategy_with_cached_code(gateway=None):
    if gateway is not None:
        gateway.list_symbol("UPCO")  # a made-up symbol: listed at the gateway
    code = CodeFactory(symbol="UPCO") if gateway is None else code_resolve(symbol="UPCO")
    cache_run_bars(code, gateway=gateway)
    return strategy_create(name="Racing", type="two_indicator", codes=[code])


def at_once(work, items):
    """``work(item)`` for every item, each in its own thread, released together."""
    barrier = threading.Barrier(len(items))
    outcomes = {}

    def race(item):
        try:
            barrier.wait()
            outcomes[item] = work(item)
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=race, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_of_two_racing_acquires_for_one_strategy_exactly_one_starts_its_run():
    strategy = strategy_with_cached_code()
    pending = [execution_prepare(strategy=strategy).pk for _ in range(2)]

    outcomes = at_once(lambda pk: DatabaseRunLock(strategy.pk).start(pk), pending)

    assert sorted(outcomes.values(), key=lambda o: o.value) == [Start.BUSY, Start.STARTED]
    running = [pk for pk, outcome in outcomes.items() if outcome is Start.STARTED]
    assert (
        list(
            WorkflowExecution.objects.filter(status=ExecutionStatus.RUNNING).values_list(
                "pk", flat=True
            )
        )
        == running
    )
    # While it runs, a later run of the strategy is refused too; after it, one may start.
    third = execution_prepare(strategy=strategy).pk
    assert DatabaseRunLock(strategy.pk).start(third) is Start.BUSY
    WorkflowExecution.objects.filter(pk__in=running).update(status=ExecutionStatus.COMPLETED)
    assert DatabaseRunLock(strategy.pk).start(third) is Start.STARTED


def test_two_runs_of_one_strategy_started_together_one_runs_and_one_is_skipped(gateway):
    strategy = strategy_with_cached_code(gateway)
    for round_ in range(1, 4):  # the window is narrow: race a few times
        pending = [execution_prepare(strategy=strategy).pk for _ in range(2)]

        outcomes = at_once(lambda pk: execution_run(execution_id=pk, dry_run=True), pending)

        statuses = sorted(execution.status for execution in outcomes.values())
        assert statuses == [ExecutionStatus.CANCELLED, ExecutionStatus.COMPLETED], round_
        skipped = next(e for e in outcomes.values() if e.status == ExecutionStatus.CANCELLED)
        assert skipped.error_message.startswith("Skipped: another run of strategy")
        assert Decision.objects.count() == round_
