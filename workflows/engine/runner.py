"""Runs one execution: every code of the strategy through every step, with progress and logs.

The runner knows nothing of any one step: it loops, records progress, checks for a cancel
between steps, and keeps one code's failure from stopping the others.
"""

import logging
import time
from dataclasses import dataclass, field

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from marketdata.services import market_data_get, price_now
from orders.selectors import account_summary
from orders.services import bracket_place, position_exit
from strategies.risk import risk_check
from strategies.services import decision_record
from tradingsite.broker import BrokerError
from tradingsite.celery import app as celery_app
from tradingsite.database import commit_without_waiting
from tradingsite.exceptions import ApplicationError

from ..charts import chart_record
from ..models import AgentConversation, ExecutionStatus, WorkflowExecution
from ..templates import strategy_steps
from .locks import RunLockLost, Start, run_lock_drop, strategy_run_lock
from .params import fill_placeholders
from .steps import REGISTRY
from .validation import params_errors

logger = logging.getLogger(__name__)

# The result backend's PROGRESS state of a run is sent at most this often (and at each code's
# first step, and before a wait); the database's progress is written at every step.
PROGRESS_STATE_SECONDS = 1.0
LOG_LIMIT = 2000  # lines kept in results["execution_logs"]; a run over it keeps the last ones
# The database went away under the run (a terminated backend, a restart, a network cut).
DATABASE_LOST = (OperationalError, InterfaceError)


class Cancelled(Exception):
    """The execution was cancelled; the runner stops between two steps."""


@dataclass
class SymbolRun:
    """What the steps learn about one code during a run."""

    code: object
    timeframes: dict = field(default_factory=dict)  # bar size -> cached data document
    sources: dict = field(default_factory=dict)  # bar size -> (period, the cache row's id)
    analyses: list = field(default_factory=list)
    proposal: dict | None = None  # the decision the model(s) proposed, not yet stored
    decision: object = None
    risk: object = None
    order: object = None
    halted: str | None = None  # why deciding and ordering steps are skipped for this code
    unparsed: list = field(default_factory=list)  # parse errors of single model answers
    unparsed_reply: str | None = None  # the last model answer that could not be parsed
    llm_model: str = ""  # the model that proposed (empty: the indicator rules decide)
    model_time_ms: int | None = None  # the model calls' time, all steps together

    @property
    def name(self):
        """The code's symbol, as the log and the failures name it."""
        return self.code.symbol


class Run:
    """The state of one execution while it runs."""

    def __init__(self, execution, *, steps, params, codes, dry_run=False, task=None, lock=None):
        self.execution = execution
        self.strategy = execution.strategy
        self.workflow = execution.workflow
        self.steps = steps
        self.params = params
        self.codes = codes
        self.dry_run = dry_run
        self.task = task
        self.lock = lock
        self.logs = []
        self.counts = {"symbols_processed": 0, "decisions_made": 0, "orders_placed": 0}
        self.charts = []
        self.failed_symbols = []
        self.failures = {}  # symbol -> why it failed
        self._account = None
        self._progress_state = None  # the progress not yet sent to the result backend
        self._progress_state_sent = None  # when it was last sent (time.monotonic)

    def account(self):
        """IB's account summary, asked once per run: the risk gate sizes from it."""
        if self._account is None:
            self._account = account_summary()
        return self._account

    # --- the outside world, as the steps reach it (a backtest's run replaces each) --------
    def market_data(self, *, code, period, bar, on_wait=None):
        return market_data_get(code=code, period=period, bar=bar, on_wait=on_wait)

    def price_now(self, *, code):
        return price_now(code=code)

    def decision_record(self, **fields):
        return decision_record(**fields)

    def risk_check(self, **arguments):
        return risk_check(**arguments)

    def bracket_place(self, **arguments):
        return bracket_place(**arguments)

    def position_exit(self, **arguments):
        return position_exit(**arguments)

    def chart_record(self, *, symbol, bar, document, indicators=None):
        period, market_data_id = symbol.sources.get(bar, (None, None))
        return chart_record(
            execution_id=self.execution.pk, symbol=symbol.name, bar=bar, code_id=symbol.code.pk,
            period=period, market_data_id=market_data_id, document=document,
            indicators=indicators,
        )  # fmt: skip

    def sleep(self, seconds):
        self.progress_state_send()  # the result backend shows the wait while it lasts
        time.sleep(seconds)

    def log(self, message, *, level="info", symbol=None, step=None):
        entry = {"time": timezone.now().isoformat(), "level": level, "message": message}
        if symbol:
            entry["symbol"] = symbol
        if step:
            entry["step"] = step
        self.logs.append(entry)
        logger.log(logging.ERROR if level == "error" else logging.INFO, "execution %s: %s",
                   self.execution.pk, message)  # fmt: skip

    def conversation_record(self, messages):
        """Store the agents' messages (records with agent_name, message_type, content,
        timestamp, tokens_used, llm_model) of this run in one insert."""
        return AgentConversation.objects.bulk_create(
            AgentConversation(
                workflow_execution=self.execution,
                agent_name=m.agent_name,
                message_type=m.message_type,
                message_content=m.content,
                timestamp=m.timestamp,
                tokens_used=m.tokens_used,
                llm_model=m.llm_model,
            )
            for m in messages
        )

    def results(self):
        return {**self.counts, "execution_logs": self.logs[-LOG_LIMIT:], "charts": self.charts,
                "failed_symbols": self.failed_symbols, "failures": self.failures,
                "dry_run": self.dry_run}  # fmt: skip

    def fail_symbol(self, code, reason):
        self.failed_symbols.append(code.symbol)
        self.failures[code.symbol] = reason
        self.log(f"{code.symbol} failed: {reason}", level="error", symbol=code.symbol)

    def failures_text(self):
        return "; ".join(f"{symbol}: {reason}" for symbol, reason in self.failures.items())

    def progress(self, *, step_number, step_type, symbol, completed):
        progress = {
            "current_step": step_number,
            "step_type": step_type,
            "total_steps": len(self.steps),
            "current_symbol": symbol,
            "completed_symbols": completed,
            "total_symbols": len(self.codes),
        }
        done = completed * len(self.steps) + step_number - 1
        progress["percent"] = round(100 * done / max(1, len(self.steps) * len(self.codes)))
        # One write per step keeps progress readable while the run goes on and finds a cancel:
        # a cancelled execution is no longer running, so nothing matches. The log (which
        # grows with the run) is written when a code starts, not at every step.
        updates = {"progress": progress}
        if step_number == 1:
            updates["results"] = self.results()
        running = WorkflowExecution.objects.filter(
            pk=self.execution.pk, status=ExecutionStatus.RUNNING
        )
        with commit_without_waiting():  # the next step's, or the run's end, overwrites it
            updated = running.update(**updates)
        if not updated:
            raise Cancelled
        if self.lock is not None:
            self.lock.extend()
        self._progress_state = progress
        sent = self._progress_state_sent
        if step_number == 1 or sent is None or time.monotonic() - sent >= PROGRESS_STATE_SECONDS:
            self.progress_state_send()

    def progress_state_send(self):
        """Send the progress to Celery's result backend (the task's PROGRESS state), if it
        has not been yet. A step's progress is written to the database at every step (the
        execution's page and API read it there); the result backend gets it at each code's
        first step, at most every PROGRESS_STATE_SECONDS, and before a wait: about a tenth
        of a warm run's CPU went into sending it at every step."""
        progress, self._progress_state = self._progress_state, None
        if progress is None or self.task is None or not self.task.request.id:
            return
        self._progress_state_sent = time.monotonic()
        try:
            self.task.update_state(state="PROGRESS", meta=progress)
        except Exception:  # the database has the progress; the result backend may lag
            logger.warning("execution %s: progress not sent to the result backend",
                           self.execution.pk, exc_info=True)  # fmt: skip

    def final_progress(self):
        """Progress of a run that went through every code (the last step of the last one)."""
        return {
            "current_step": len(self.steps),
            "step_type": None,
            "total_steps": len(self.steps),
            "current_symbol": self.codes[-1].symbol if self.codes else None,
            "completed_symbols": len(self.codes),
            "total_symbols": len(self.codes),
            "percent": 100,
        }


def _durably(write, *, attempts=6):
    """``write()``, again on a fresh connection while the database refuses it: a run's end
    must be written even when the database dropped the run's connection (the connection the
    failure happened on is broken, and each later query on it fails too). Gives up after
    about six seconds; the sweep ends what is left."""
    for attempt in range(attempts):
        try:
            return write()
        except DATABASE_LOST:
            if attempt == attempts - 1:
                raise
            logger.warning("writing a run's end failed; retrying on a new connection")
            connection.close()
            time.sleep(min(0.2 * 2**attempt, 3))


def _finish(execution, *, status, run=None, error=None, went_through=False):
    """Write the final status, unless a cancel got there first. A run that ``went_through``
    every code (completed, or failed on each) shows them all done, not the last one started."""
    updates = {"status": status, "completed_at": timezone.now(), "error_message": error}
    if run is not None:
        updates["results"] = run.results()
        if status == ExecutionStatus.COMPLETED or went_through:
            updates["progress"] = run.final_progress()

    def write():
        running = WorkflowExecution.objects.filter(pk=execution.pk, status=ExecutionStatus.RUNNING)
        if not running.update(**updates) and run is not None:
            WorkflowExecution.objects.filter(pk=execution.pk).update(
                results=run.results(), completed_at=updates["completed_at"]
            )

    _durably(write)


def execution_run(*, execution_id, task=None, dry_run=False):
    """Run a pending execution to completed, failed or cancelled; returns the execution."""
    execution = WorkflowExecution.objects.select_related("strategy", "workflow").get(
        pk=execution_id
    )
    if execution.status == ExecutionStatus.RUNNING:
        # Redelivered after its worker died (late acks): the old attempt may have placed
        # orders, so it is not run again.
        _finish(execution, status=ExecutionStatus.FAILED,
                error="The worker running this execution was lost; it was not resumed so that "
                      "no order is sent twice. Run the strategy again.")  # fmt: skip
        run_lock_drop(strategy_id=execution.strategy_id, execution_id=execution.pk)
        execution.refresh_from_db()
        return execution
    if execution.status != ExecutionStatus.PENDING:
        return execution

    lock = strategy_run_lock(execution.strategy_id)
    task_id = task.request.id if task is not None and task.request.id else None
    try:
        start = lock.start(execution.pk, task_id=task_id)
    except Exception as exc:  # Redis (the lock's home) cannot be reached: never started
        logger.exception("execution %s: the run lock could not be taken", execution.pk)
        WorkflowExecution.objects.filter(pk=execution.pk, status=ExecutionStatus.PENDING).update(
            status=ExecutionStatus.FAILED, completed_at=timezone.now(),
            error_message=f"Not started: the strategy's run lock could not be taken "
                          f"({type(exc).__name__}: {exc}). Run it again.",
        )  # fmt: skip
        execution.refresh_from_db()
        return execution
    if start is Start.BUSY:
        message = (
            f"Skipped: another run of strategy {execution.strategy} is in progress "
            "(runs of one strategy never overlap)."
        )
        logger.info("execution %s: %s", execution.pk, message)
        WorkflowExecution.objects.filter(pk=execution.pk).update(
            status=ExecutionStatus.CANCELLED, completed_at=timezone.now(), error_message=message,
            results={"execution_logs": [{"time": timezone.now().isoformat(), "level": "info",
                                          "message": message}]},
        )  # fmt: skip
        execution.refresh_from_db()
        return execution
    run = None
    try:
        if start is Start.GONE:  # cancelled while it waited in the queue
            execution.refresh_from_db()
            return execution
        strategy = execution.strategy
        steps, defaults = strategy_steps(strategy_type=strategy.type, workflow=execution.workflow)
        params = {**defaults, **(strategy.param or {})}
        codes = list(strategy.codes.order_by("symbol"))
        run = Run(execution, steps=[], params=params, codes=codes, dry_run=dry_run, task=task,
                  lock=lock)  # fmt: skip
        problems = params_errors(steps, params) if steps else {"steps": "the workflow has no steps"}
        if problems or not codes:
            reason = (
                "; ".join(f"{k}: {v}" for k, v in problems.items()) or "the strategy has no codes"
            )
            run.log(f"Cannot run: {reason}", level="error")
            _finish(
                execution, status=ExecutionStatus.FAILED, run=run, error=f"Cannot run: {reason}"
            )
        else:
            run.steps = fill_placeholders(steps, params)
            _run_symbols(run)
    except Cancelled:
        run.log("Cancelled between steps.")
        _finish(execution, status=ExecutionStatus.CANCELLED, run=run)
    except RunLockLost as exc:
        _stop(run, reason=str(exc))
    except SoftTimeLimitExceeded:
        _stop(run, reason=f"the run lasted longer than WORKFLOW_MAX_RUNTIME_SECONDS "
                          f"({settings.WORKFLOW_MAX_RUNTIME_SECONDS} s).")  # fmt: skip
    except DATABASE_LOST as exc:
        logger.exception("execution %s: the database went away", execution.pk)
        reason = f"the database connection was lost ({type(exc).__name__}: {exc})".strip()
        _finish(execution, status=ExecutionStatus.FAILED, run=run,
                error=f"Stopped: {reason}. Run it again.")  # fmt: skip
    except Exception as exc:  # the execution must end failed, never stay running
        logger.exception("execution %s failed", execution.pk)
        _finish(execution, status=ExecutionStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
    finally:
        lock.release()
    _durably(execution.refresh_from_db)
    return execution


def _stop(run, *, reason):
    """End a run that must not go on, keeping its log."""
    run.log(f"Stopped: {reason}", level="error")
    _finish(run.execution, status=ExecutionStatus.FAILED, run=run, error=f"Stopped: {reason}")


def _run_symbols(run):
    source = run.workflow.name if run.workflow else f"legacy {run.strategy.type} template"
    run.log(f"Running {source} on {len(run.codes)} codes" + (" (dry run)" if run.dry_run else ""))
    for index, code in enumerate(run.codes):
        symbol = SymbolRun(code=code)
        try:
            for number, step in enumerate(run.steps, start=1):
                run.progress(step_number=number, step_type=step["type"], symbol=code.symbol,
                             completed=index)  # fmt: skip
                handler = REGISTRY[step["type"]]
                if not handler.runs_after_last_code and index == len(run.codes) - 1:
                    continue  # a pacing step is for between codes
                if symbol.halted and handler.needs_decision_path:
                    run.log(f"skipped {step['type']}: {symbol.halted}", symbol=code.symbol,
                            step=step["type"])  # fmt: skip
                    continue
                handler.run(run, symbol, step.get("config", {}))
            run.counts["symbols_processed"] += 1
        except (Cancelled, RunLockLost, SoftTimeLimitExceeded, *DATABASE_LOST):
            raise  # the whole run ends
        except (ApplicationError, BrokerError) as exc:
            run.fail_symbol(code, str(exc))
        except Exception as exc:
            logger.exception("execution %s: %s failed", run.execution.pk, code.symbol)
            run.fail_symbol(code, f"{type(exc).__name__}: {exc}")
    if run.counts["symbols_processed"] == 0:
        _finish(run.execution, status=ExecutionStatus.FAILED, run=run, went_through=True,
                error=f"Every code failed: {run.failures_text()}")  # fmt: skip
        return
    run.log(
        f"Done: {run.counts['symbols_processed']} codes, {run.counts['decisions_made']} "
        f"decisions, {run.counts['orders_placed']} orders"
    )
    failed = (
        f"{len(run.failed_symbols)} of {len(run.codes)} codes failed: {run.failures_text()}"
        if run.failed_symbols
        else None
    )
    _finish(run.execution, status=ExecutionStatus.COMPLETED, run=run, error=failed)


@transaction.atomic
def execution_cancel(*, execution):
    """Cancel a pending or running execution; a running one stops between two steps."""
    execution = WorkflowExecution.objects.select_for_update().get(pk=execution.pk)
    if execution.status not in (ExecutionStatus.PENDING, ExecutionStatus.RUNNING):
        raise ApplicationError(
            f"Execution {execution.pk} is already {execution.status}.",
            extra={"status": f"A {execution.status} execution cannot be cancelled."},
        )
    was_pending = execution.status == ExecutionStatus.PENDING
    execution.status = ExecutionStatus.CANCELLED
    execution.completed_at = timezone.now() if was_pending else None
    execution.save(update_fields=["status", "completed_at"])
    if was_pending and execution.task_id:
        transaction.on_commit(lambda: celery_app.control.revoke(execution.task_id))
    return execution
