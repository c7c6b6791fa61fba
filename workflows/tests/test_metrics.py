from datetime import UTC, date, datetime, timedelta

import pytest

from marketdata.tests.factories import CodeFactory
from orders.tests.factories import OrderFactory
from strategies.services import decision_record
from strategies.tests.factories import StrategyFactory
from workflows.models import ExecutionStatus, WorkflowExecution, WorkflowMetrics
from workflows.services import workflow_metrics_compute
from workflows.tests.factories import WorkflowFactory

pytestmark = pytest.mark.django_db

DAY = date(2026, 11, 20)


def execution(workflow, strategy, status, hour, seconds):
    started = datetime(2026, 11, 20, hour, tzinfo=UTC)
    return WorkflowExecution.objects.create(
        workflow=workflow, strategy=strategy, status=status, started_at=started,
        completed_at=started + timedelta(seconds=seconds),
    )  # fmt: skip


def test_daily_metrics_by_hand():
    workflow, strategy = WorkflowFactory(), StrategyFactory()
    code = CodeFactory()
    first = execution(workflow, strategy, ExecutionStatus.COMPLETED, 9, 30)
    execution(workflow, strategy, ExecutionStatus.COMPLETED, 10, 90)
    execution(workflow, strategy, ExecutionStatus.FAILED, 11, 5)
    execution(workflow, strategy, ExecutionStatus.CANCELLED, 12, 1)
    other_day = execution(workflow, strategy, ExecutionStatus.COMPLETED, 13, 10)
    other_day.started_at -= timedelta(days=1)
    other_day.save()
    buy = decision_record(
        code=code, strategy=strategy, type="buy", current_price="10", target_price="12",
        stop_loss="9", workflow_execution=first,
    )  # fmt: skip
    for _ in range(2):
        decision_record(code=code, strategy=strategy, type="hold", current_price="10",
                        workflow_execution=first)  # fmt: skip
    OrderFactory(instrument=code, decision=buy)
    # Replies that were no decision: one unreadable, one model that could not be asked.
    for status in ("parsing_error", "failed"):
        decision_record(code=code, strategy=strategy, type="hold", current_price="10",
                        workflow_execution=first, status=status, error_message="...")  # fmt: skip

    (record,) = workflow_metrics_compute(day=DAY)
    assert record.metrics == {
        "total_executions": 4,
        "success_rate": 0.6667,  # 2 completed of 3 finished (the cancelled one is not judged)
        "avg_duration": 60.0,  # (30 + 90) / 2 completed
        "decisions_by_type": {"buy": 1, "sell": 0, "hold": 2},  # the model's decisions only
        "orders_placed": 1,
        "parse_errors": 1,
        "model_failures": 1,
    }
    # computing again updates the same row
    workflow_metrics_compute(day=DAY)
    assert WorkflowMetrics.objects.filter(workflow=workflow, date=DAY).count() == 1


def test_a_run_that_never_started_counts_on_the_day_it_was_made():
    workflow, strategy = WorkflowFactory(), StrategyFactory()
    execution(workflow, strategy, ExecutionStatus.COMPLETED, 23, 30)
    WorkflowExecution.objects.create(  # the task queue was down: failed, never started
        workflow=workflow, strategy=strategy, status=ExecutionStatus.FAILED,
        created_at=datetime(2026, 11, 20, 8, tzinfo=UTC),
    )  # fmt: skip
    WorkflowExecution.objects.create(  # made the next day: not this day's
        workflow=workflow, strategy=strategy, status=ExecutionStatus.FAILED,
        created_at=datetime(2026, 11, 21, 0, 1, tzinfo=UTC),
    )  # fmt: skip

    (record,) = workflow_metrics_compute(day=DAY)

    assert (record.metrics["total_executions"], record.metrics["success_rate"]) == (2, 0.5)
