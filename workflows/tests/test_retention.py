"""Retention (seed 002): the nightly jobs delete what is past its time and keep what they
must: a decision behind an order, one snapshot a day, every trade, order and fill."""

from datetime import UTC, datetime, timedelta

import pytest
from django_celery_beat.models import PeriodicTask

from orders.models import Order, OrderExecution, Trade, TradeExit
from performance.models import AgentPerformance
from performance.services import performance_snapshot, performance_snapshots_purge
from performance.tasks import performance_snapshots_purge_task
from strategies.models import Decision
from strategies.services import decisions_purge
from strategies.tasks import decisions_purge_task
from strategies.tests.factories import StrategyFactory
from tradingsite.schedules import periodic_jobs_sync
from tradingsite.testing.factories import ExecutionFactory, make_decision, make_fill
from workflows.models import ExecutionStatus
from workflows.services import execution_logs_purge
from workflows.tasks import execution_logs_purge_task

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 9, 30, 4, tzinfo=UTC)


def days_ago(days, hour=12):
    return (NOW - timedelta(days=days)).replace(hour=hour, minute=0)


def test_old_decisions_without_an_order_go_and_the_rest_stay(settings):
    settings.DECISION_RETENTION_DAYS = 90
    old_hold = make_decision(type="hold", target_price=None, stop_loss=None,
                             created_at=days_ago(91))  # fmt: skip
    old_unparsed = make_decision(type="hold", target_price=None, stop_loss=None,
                                 status="parsing_error", created_at=days_ago(200))  # fmt: skip
    traded = make_decision(created_at=days_ago(300))
    fill = make_fill(decision=traded)
    recent = make_decision(type="hold", target_price=None, stop_loss=None,
                           created_at=days_ago(89))  # fmt: skip
    books = (Order.objects.count(), Trade.objects.count(), OrderExecution.objects.count())

    report = decisions_purge(now=NOW)

    assert report == {"decisions_deleted": 2, "before": "2025-07-02T04:00:00+00:00"}
    assert not Decision.objects.filter(pk__in=[old_hold.pk, old_unparsed.pk]).exists()
    assert set(Decision.objects.values_list("pk", flat=True)) == {traded.pk, recent.pk}
    # Trades, orders and fills are never deleted.
    assert (Order.objects.count(), Trade.objects.count(), OrderExecution.objects.count()) == books
    assert Order.objects.get(pk=fill.pk).decision_id == traded.pk
    assert decisions_purge(now=NOW)["decisions_deleted"] == 0  # nothing more to do


def snapshot(strategy, at):
    return performance_snapshot(strategy=strategy, now=at)


def test_snapshots_past_180_days_are_thinned_to_the_last_of_each_day(settings):
    settings.PERFORMANCE_RETENTION_DAYS = 180
    one, two = StrategyFactory(), StrategyFactory()
    morning, close, night = (snapshot(one, days_ago(200, hour)) for hour in (9, 20, 23))
    other_strategy_same_day = snapshot(two, days_ago(200, 10))
    lone_old_day = snapshot(one, days_ago(250, 14))
    recent = [snapshot(one, days_ago(10, hour)) for hour in (9, 20, 23)]

    report = performance_snapshots_purge(now=NOW)

    assert report["snapshots_deleted"] == 2
    kept = set(AgentPerformance.objects.values_list("pk", flat=True))
    assert kept == {night.pk, other_strategy_same_day.pk, lone_old_day.pk,
                    *(row.pk for row in recent)}  # fmt: skip
    assert {morning.pk, close.pk}.isdisjoint(kept)
    assert performance_snapshots_purge(now=NOW)["snapshots_deleted"] == 0


def test_the_logs_of_old_runs_go_and_the_runs_stay(settings):
    settings.EXECUTION_LOG_RETENTION_DAYS = 30
    log = [{"time": "2025-06-01T12:00:00", "level": "info", "message": "Running"}] * 3
    old = ExecutionFactory(created_at=days_ago(31), results={"execution_logs": log,
                                                             "decisions_made": 1})  # fmt: skip
    running = ExecutionFactory(created_at=days_ago(40), status=ExecutionStatus.RUNNING,
                               results={"execution_logs": log})  # fmt: skip
    recent = ExecutionFactory(created_at=days_ago(29), results={"execution_logs": log})
    decision = make_decision(workflow_execution=old, created_at=days_ago(31))

    report = execution_logs_purge(now=NOW)

    assert report == {"execution_logs_deleted": 1, "log_lines_deleted": 3,
                      "before": "2025-08-31T04:00:00+00:00"}  # fmt: skip
    old.refresh_from_db()
    assert old.results == {
        "decisions_made": 1,
        "execution_logs_deleted": {"lines": 3, "at": "2025-09-30T04:00:00+00:00"},
    }
    decision.refresh_from_db()
    assert decision.workflow_execution == old
    for execution in (running, recent):
        execution.refresh_from_db()
        assert execution.results["execution_logs"] == log


def test_the_jobs_run_nightly_from_beat_and_report_what_they_deleted(settings):
    periodic_jobs_sync()
    tasks = dict(PeriodicTask.objects.filter(name__startswith="retention:")
                 .values_list("task", "crontab__hour"))  # fmt: skip
    assert tasks == {
        "strategies.tasks.decisions_purge_task": "3",
        "performance.tasks.performance_snapshots_purge_task": "3",
        "workflows.tasks.execution_logs_purge_task": "3",
    }
    close = PeriodicTask.objects.select_related("crontab").get(
        name="performance: snapshots after the close"
    )
    assert (close.task, str(close.crontab.timezone)) == (
        "performance.tasks.performance_snapshot_task", "America/New_York",
    )  # fmt: skip
    assert (close.crontab.hour, close.crontab.minute, close.crontab.day_of_week) == (
        "16", "5", "1-5",
    )  # fmt: skip
    make_decision(created_at=datetime(2020, 1, 1, tzinfo=UTC))
    assert decisions_purge_task()["decisions_deleted"] == 1
    assert performance_snapshots_purge_task()["snapshots_deleted"] == 0
    assert execution_logs_purge_task()["execution_logs_deleted"] == 0
    assert TradeExit.objects.count() == 0
