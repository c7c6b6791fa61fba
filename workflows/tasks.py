"""Celery tasks: each takes ids, loads them, and calls a service."""

from datetime import date, timedelta

from celery import shared_task, signals
from celery.exceptions import TimeLimitExceeded
from django.conf import settings
from django.utils import timezone

from strategies.models import Strategy

from .models import Workflow, WorkflowExecution
from .services import (
    backtest_execute,
    backtest_settings,
    execution_record,
    execution_run,
    execution_stop,
    executions_sweep,
    workflow_metrics_compute,
)


@shared_task(
    bind=True,
    name="workflows.tasks.run_workflow",
    acks_late=True,
    soft_time_limit=settings.WORKFLOW_MAX_RUNTIME_SECONDS,
    time_limit=settings.WORKFLOW_TIME_LIMIT_SECONDS,
)
def run_workflow(self, strategy_id, workflow_id=None, execution_id=None, dry_run=False):
    """Run a strategy's workflow (beat calls it with the strategy id alone)."""
    if execution_id is None and self.request.id:
        # Beat's call, delivered again (its worker presumed lost): the execution the first
        # delivery made, so the runner sees that run and does not start another.
        execution_id = (
            WorkflowExecution.objects.filter(task_id=self.request.id)
            .values_list("pk", flat=True)
            .first()
        )
    if execution_id is None:  # beat's first delivery
        strategy = Strategy.objects.get(pk=strategy_id)
        workflow = Workflow.objects.get(pk=workflow_id) if workflow_id else strategy.workflow
        execution_id = execution_record(
            strategy=strategy, workflow=workflow, dry_run=dry_run, task_id=self.request.id
        ).pk
    execution = execution_run(execution_id=execution_id, task=self, dry_run=dry_run)
    return {
        "execution_id": execution.pk,
        "status": execution.status,
        **{
            k: execution.results.get(k)
            for k in ("symbols_processed", "decisions_made", "orders_placed")
        },
    }


@signals.task_retry.connect
def run_cancelled_by_its_worker(sender=None, request=None, **kwargs):
    """Celery announces a late-ack task it terminated because the worker lost its connection
    to Redis (worker_cancel_long_running_tasks_on_connection_loss) as a retry; run_workflow
    never retries itself. Its pool process was killed mid-run: the run ends failed here, in
    the worker's main process, saying why."""
    if getattr(sender, "name", None) == run_workflow.name and request is not None:
        execution_stop(
            task_id=request.id,
            reason="Stopped: the worker lost its connection to Redis (the task queue) and "
            "terminated this run, as it does with every run it can no longer acknowledge. "
            "Run it again once Redis is back.",
        )


@signals.task_failure.connect
def run_failed_outside_the_runner(sender=None, task_id=None, exception=None, **kwargs):
    """A run whose task failed past the runner (its hard time limit killed the pool process,
    or an error escaped) ends failed with that reason, at once, not at the sweep."""
    if getattr(sender, "name", None) != run_workflow.name or not task_id:
        return
    if isinstance(exception, TimeLimitExceeded):
        reason = (
            f"Stopped: the run passed its hard time limit ({settings.WORKFLOW_TIME_LIMIT_SECONDS}"
            " s) and its worker process was killed."
        )
    else:
        reason = f"Stopped: {type(exception).__name__}: {exception}"
    execution_stop(task_id=task_id, reason=reason)


@shared_task
def executions_sweep_task():
    return executions_sweep()


@shared_task
def workflow_metrics_task(day=None):
    """Yesterday's and today's metrics (yesterday's runs may have finished after midnight)."""
    days = [date.fromisoformat(day)] if day else [
        timezone.now().date() - timedelta(days=1), timezone.now().date()
    ]  # fmt: skip
    return sum(len(workflow_metrics_compute(day=d)) for d in days)


@shared_task(bind=True, name="workflows.tasks.backtest_task")
def backtest_task(self, strategy_id, start, end, commission="ib_fixed", slippage_bps="0",
                  allow_short=False, brackets=True, replay=None):  # fmt: skip
    """Backtest a strategy; its progress (bars done of the total) is the task's state."""
    strategy = Strategy.objects.select_related("workflow").get(pk=strategy_id)
    settings = backtest_settings(start=start, end=end, commission=commission,
                                 slippage_bps=slippage_bps, allow_short=allow_short,
                                 brackets=brackets, replay=replay)  # fmt: skip

    def progress(done, total):
        if self.request.id:
            meta = {"bars_done": done, "bars": total, "percent": round(100 * done / total)}
            self.update_state(state="PROGRESS", meta=meta)

    outcome = backtest_execute(strategy=strategy, settings=settings, progress=progress)
    return {"run_id": outcome.run_id, "result_ids": [r.pk for r in outcome.results],
            "final_equity": str(outcome.final_equity), "failures": outcome.failures}  # fmt: skip


@shared_task
def execution_logs_purge_task():
    from .services import execution_logs_purge

    return execution_logs_purge()
