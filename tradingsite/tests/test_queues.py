"""Runs, the broker's housekeeping and maintenance go to queues of their own, so that a flood
of runs never delays the reconcile (the Procfile gives each its workers)."""

import importlib

import pytest

from tradingsite.celery import app

ROUTES = {
    "workflows.tasks.run_workflow": "runs",
    "orders.tasks.orders_reconcile_task": "broker",
    "workflows.tasks.executions_sweep_task": "broker",
    "marketdata.tasks.market_data_purge_task": "maintenance",
    "marketdata.tasks.bars_sync_task": "maintenance",
    "performance.tasks.performance_snapshot_task": "maintenance",
    "workflows.tasks.workflow_metrics_task": "maintenance",
    "strategies.tasks.decisions_purge_task": "maintenance",
    "performance.tasks.performance_snapshots_purge_task": "maintenance",
    "workflows.tasks.execution_logs_purge_task": "maintenance",
}


@pytest.mark.parametrize("task, queue", ROUTES.items())
def test_each_task_goes_to_its_queue(task, queue):
    importlib.import_module(task.rsplit(".", 1)[0])  # as the worker's autodiscovery does
    assert task in app.tasks  # a task that exists, by the name beat sends
    assert app.amqp.router.route({}, task)["queue"].name == queue


def test_every_periodic_job_and_a_strategy_schedule_is_routed():
    from strategies.schedules import RUN_TASK
    from tradingsite.schedules import PERIODIC_JOBS

    assert {task for task, _ in PERIODIC_JOBS.values()} | {RUN_TASK} == set(ROUTES)


def test_a_worker_without_q_consumes_every_queue_and_others_go_to_maintenance():
    assert set(app.amqp.queues) == {"runs", "broker", "maintenance"}
    assert app.amqp.router.route({}, "some.new.task")["queue"].name == "maintenance"
