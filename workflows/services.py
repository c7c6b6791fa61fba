"""Writes for workflows (every change of steps is a new version, revert and clone included),
for the strategies that run them, and for their executions.

A strategy's create, update, resume and clone are here rather than in ``strategies.services``
because each checks the strategy's parameters against its workflow's steps, which this layer
knows and the one below does not (README, "Layout").
"""

import logging
import uuid
from datetime import UTC, datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Avg, Count, F, Max, Q
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from orders.models import Order
from strategies.models import Decision, DecisionStatus, Strategy, StrategyType
from strategies.schedules import schedule_check, strategy_schedule_sync
from strategies.services import strategy_pause
from tradingsite.exceptions import ApplicationError, ServiceUnavailable, delete_or_refuse
from tradingsite.names import copy_name

from .backtest import BacktestSettings, backtest_run
from .engine import (
    error_name,
    param_value_errors,
    params_errors,
    params_step_errors,
    workflow_errors,
)
from .engine.locks import LOCK_SECONDS, owner_gone, run_lock_drop, run_lock_owner
from .engine.runner import execution_cancel, execution_run
from .models import (
    ExecutionStatus,
    StrategyProbeConversation,
    Workflow,
    WorkflowExecution,
    WorkflowMetrics,
    WorkflowType,
    WorkflowVersion,
)
from .templates import TEMPLATES, strategy_steps

__all__ = ["execution_cancel", "execution_run"]  # the runner's services, re-exported

EDITABLE = ("name", "type", "description", "steps", "default_params")

logger = logging.getLogger(__name__)


def workflow_check(fields):
    """Refuse workflow ``fields`` (any of EDITABLE) that could not be saved or run, naming
    each field; the admin's form asks here too."""
    problems = {}
    if "name" in fields and not str(fields["name"] or "").strip():
        problems["name"] = "This field is required."
    if "type" in fields and fields["type"] not in WorkflowType.values:
        problems["type"] = f"{fields['type']!r} is not one of {', '.join(WorkflowType.values)}."
    if "default_params" in fields:
        if not isinstance(fields["default_params"], dict):
            problems["default_params"] = "Must be an object of parameter names to values."
        elif param_problems := param_value_errors(fields["default_params"]):
            problems["default_params"] = param_problems
    if "steps" in fields:
        errors = workflow_errors(fields["steps"])
        if errors:
            problems["steps"] = [str(error) for error in errors]
    if problems:
        raise ApplicationError("The workflow is not valid.", extra=problems)


def _username(user):
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return user.get_username()


def _version_write(*, workflow, created_by, note):
    number = (workflow.versions.aggregate(top=Max("version_number"))["top"] or 0) + 1
    version = WorkflowVersion.objects.create(
        workflow=workflow,
        version_number=number,
        steps=workflow.steps,
        created_by=_username(created_by),
        note=note,
    )
    workflow.current_version = version
    workflow.save(update_fields=["current_version", "updated_at"])
    return version


@transaction.atomic
def workflow_create(*, name, type=WorkflowType.CUSTOM, steps=None, default_params=None,
                    description="", created_by=None, note="Created"):  # fmt: skip
    fields = {
        "name": name,
        "type": type,
        "steps": [] if steps is None else steps,
        "default_params": {} if default_params is None else default_params,
        "description": description or "",
    }
    workflow_check(fields)
    workflow = Workflow.objects.create(**fields)
    _version_write(workflow=workflow, created_by=created_by, note=note)
    return workflow


def workflow_is_builtin(workflow):
    """One of the built-in templates (``workflows.templates``, loaded by a migration): read
    only, since every strategy made from a template uses it; clone it to edit."""
    template = TEMPLATES.get(workflow.type)
    return template is not None and template["name"] == workflow.name


def workflow_breaks(*, workflow, steps, default_params):
    """[(strategy, {what: why})] for each strategy on ``workflow`` that could not run with
    these ``steps`` and ``default_params`` (a missing or misspelt placeholder, a parameter
    the new steps refuse, no steps at all)."""
    broken = []
    for strategy in workflow.strategies.order_by("name"):
        if not steps:
            problems = {"steps": "the workflow would have no steps"}
        else:
            problems = params_errors(steps, {**(default_params or {}), **(strategy.param or {})})
        if problems:
            broken.append((strategy, problems))
    return broken


def breaks_described(broken):
    return [
        f"{strategy.name} (#{strategy.pk}): "
        + "; ".join(f"{name}: {reason}" for name, reason in problems.items())
        for strategy, problems in broken
    ]


@transaction.atomic
def workflow_update(*, workflow, created_by=None, note="", new_version=False,
                    pause_strategies=False, **fields):  # fmt: skip
    """Change a workflow; a change of ``steps`` (or ``new_version``) writes the next version.

    Nothing saved may break what runs: a change that a strategy using the workflow could not
    run with is refused naming each such strategy, unless ``pause_strategies``: then they are
    paused (their schedules stop) in the same transaction. ``workflow.paused_strategies``
    lists them. The built-in templates are read-only."""
    unknown = fields.keys() - set(EDITABLE)
    if unknown:
        raise ApplicationError(
            "Unknown workflow fields.", extra={name: "Not an editable field." for name in unknown}
        )
    workflow_check(fields)
    workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
    changing = {name for name, value in fields.items() if value != getattr(workflow, name)}
    if workflow_is_builtin(workflow) and (changing or new_version):
        raise ApplicationError(
            f"{workflow.name} is a built-in template and is read-only.",
            extra={name: "A built-in template is read-only: clone it and edit the copy."
                   for name in sorted(changing) or ["steps"]},
        )  # fmt: skip
    broken = []
    if changing & {"steps", "default_params"}:
        broken = workflow_breaks(
            workflow=workflow,
            steps=fields.get("steps", workflow.steps),
            default_params=fields.get("default_params", workflow.default_params),
        )
    if broken and not pause_strategies:
        raise ApplicationError(
            f"Saving would break {len(broken)} "
            f"{'strategy' if len(broken) == 1 else 'strategies'} using this workflow.",
            extra={
                "strategies": breaks_described(broken),
                "pause_strategies": "Confirm (pause_strategies) to save and pause them.",
            },
        )
    workflow.paused_strategies = [
        strategy_pause(strategy=strategy) for strategy, _ in broken if strategy.active
    ]
    steps_changed = "steps" in fields and fields["steps"] != workflow.steps
    for name, value in fields.items():
        setattr(workflow, name, value)
    workflow.save()
    if steps_changed or new_version:
        _version_write(workflow=workflow, created_by=created_by, note=note or "Steps changed")
    return workflow


def workflow_revert(*, workflow, version_number, created_by=None, pause_strategies=False):
    """Write version N+1 with version ``version_number``'s steps."""
    version = workflow.versions.filter(version_number=version_number).first()
    if version is None:
        raise ApplicationError(
            f"Workflow {workflow.pk} has no version {version_number}.",
            extra={"version_number": f"No version {version_number} of this workflow."},
        )
    if version.steps == Workflow.objects.values_list("steps", flat=True).get(pk=workflow.pk):
        raise ApplicationError(
            f"Workflow {workflow.pk} already has version {version_number}'s steps.",
            extra={"version_number": "Its steps are the current ones: nothing to revert."},
        )
    return workflow_update(
        workflow=workflow,
        steps=version.steps,
        created_by=created_by,
        note=f"Reverted from v{version_number}",
        new_version=True,
        pause_strategies=pause_strategies,
    )


def workflow_clone(*, workflow, created_by=None):
    """A new workflow "NAME (Copy)" (cut to fit) with the same steps and default parameters."""
    current = workflow.current_version.version_number if workflow.current_version_id else None
    return workflow_create(
        name=copy_name(workflow.name, max_length=Workflow._meta.get_field("name").max_length),
        type=workflow.type,
        steps=workflow.steps,
        default_params=workflow.default_params,
        description=workflow.description,
        created_by=created_by,
        note=f"Cloned from {workflow.name}" + (f" v{current}" if current else ""),
    )


# --- Strategies on their workflow --------------------------------------------------------

STRATEGY_EDITABLE = frozenset(
    {"name", "type", "param", "workflow", "active", "schedule_interval_minutes", "schedule_crontab"}
)


def params_check(*, type, param, workflow):
    """Refuse ``param`` when the strategy's workflow could not run with it (a run may use
    another workflow than the strategy's own: its type is not compared)."""
    _strategy_check(name=None, type=type, param=param, workflow=workflow)


def _codes_refusal(codes):
    """A strategy without codes has nothing to run on: refused when it is saved, not only
    when it runs. ``None`` leaves the codes as they are."""
    if codes is not None and not list(codes):
        return "A strategy trades at least one code: choose one or more."
    return None


def strategy_codes_check(*, codes):
    """The codes rule alone, for a form that checks its fields before the strategy is saved."""
    if reason := _codes_refusal(codes):
        raise ApplicationError("The strategy is not valid.", extra={"codes": reason})


def _strategy_check(*, name, type, param, workflow, pk=None, codes=None):
    """``name=None`` checks the parameters only (``params_check``)."""
    problems, param_errors = {}, []
    if reason := _codes_refusal(codes):
        problems["codes"] = reason
    if name is not None and not str(name).strip():
        problems["name"] = "This field is required."
    elif name is not None:
        same = Strategy.objects.filter(name=name).exclude(pk=pk).values_list("pk", flat=True)
        if same:
            problems["name"] = f"Strategy #{same[0]} is named {name!r} already; names are unique."
    if type not in StrategyType.values:
        problems["type"] = f"{type!r} is not one of {', '.join(StrategyType.values)}."
    elif name is not None and workflow is not None and type != workflow.type:
        # The workflow's steps are what runs: a type that says otherwise would be ignored.
        problems["type"] = (
            f"The workflow {workflow.name!r} is of type '{workflow.type}': the strategy's type "
            "follows its workflow's (leave it out, or give that one)."
        )
    if not isinstance(param, dict):
        problems["param"] = "Must be an object of parameter names to values."
    elif "type" not in problems:
        steps, defaults = strategy_steps(strategy_type=type, workflow=workflow)
        param_errors = params_step_errors(steps, {**defaults, **param})
        if param_errors:
            problems["param"] = {error_name(e): e.message for e in param_errors}
    if problems:
        raise ApplicationError("The strategy is not valid.", extra=problems, errors=param_errors)


@transaction.atomic
def strategy_create(
    *, name, type=None, param=None, workflow=None, codes=(), active=True,
    schedule_interval_minutes=None, schedule_crontab="",
):  # fmt: skip
    """A new strategy; with a workflow and no ``type``, the workflow's type. It trades at
    least one code."""
    param = {} if param is None else param
    if type is None:
        type = workflow.type if workflow is not None else StrategyType.CUSTOM
    _strategy_check(name=name, type=type, param=param, workflow=workflow, codes=codes)
    schedule_check(interval_minutes=schedule_interval_minutes, crontab=schedule_crontab)
    strategy = Strategy.objects.create(
        name=name,
        type=type,
        param=param,
        workflow=workflow,
        active=active,
        schedule_interval_minutes=schedule_interval_minutes,
        schedule_crontab=schedule_crontab or "",
    )
    strategy.codes.set(codes)
    strategy_schedule_sync(strategy=strategy)
    return strategy


def strategy_clone(*, strategy):
    """A new strategy "NAME (Copy)" (cut to fit) with the same workflow, parameters, codes and
    schedule; it starts paused, so that two copies never trade side by side unasked."""
    max_length = Strategy._meta.get_field("name").max_length
    taken = set(
        Strategy.objects.filter(name__startswith=strategy.name[:20]).values_list("name", flat=True)
    )
    return strategy_create(
        name=copy_name(strategy.name, max_length=max_length, taken=taken),
        type=strategy.type,
        param=dict(strategy.param or {}),
        workflow=strategy.workflow,
        codes=list(strategy.codes.all()),
        active=False,
        schedule_interval_minutes=strategy.schedule_interval_minutes,
        schedule_crontab=strategy.schedule_crontab,
    )


@transaction.atomic
def strategy_update(*, strategy, codes=None, **fields):
    """Change a strategy; its parameters are checked against what its workflow needs, and
    ``codes``, when given, may not be empty."""
    unknown = fields.keys() - STRATEGY_EDITABLE
    if unknown:
        raise ApplicationError(
            "Unknown strategy fields.", extra={name: "Not an editable field." for name in unknown}
        )
    if fields == {"active": False} and codes is None:  # PATCH {"active": false}: a pause
        return strategy_pause(strategy=strategy)
    strategy = Strategy.objects.select_for_update().get(pk=strategy.pk)
    if fields.get("workflow") is not None and "type" not in fields:
        fields["type"] = fields["workflow"].type  # the type follows a new workflow
    for name, value in fields.items():
        setattr(strategy, name, value)
    _strategy_check(
        name=strategy.name, type=strategy.type, param=strategy.param, workflow=strategy.workflow,
        pk=strategy.pk, codes=codes,
    )  # fmt: skip
    schedule_check(
        interval_minutes=strategy.schedule_interval_minutes, crontab=strategy.schedule_crontab
    )
    strategy.save()
    if codes is not None:
        strategy.codes.set(codes)
    strategy_schedule_sync(strategy=strategy)
    return strategy


def strategy_resume(*, strategy):
    """Schedule the strategy's runs again: checked like any change, since a workflow that no
    longer fits its parameters would only start runs that fail."""
    return strategy_update(strategy=strategy, active=True)


# --- Executions -----------------------------------------------------------------------------


def execution_start(*, strategy, workflow=None, dry_run=False):
    """A person's run (the API, the admin, ``run_workflow``): a pending execution, queued; the
    worker runs it after this commits.

    A strategy whose params its workflow cannot run with (the workflow changed after the
    strategy was saved), or that could only fail, is refused with ApplicationError naming each
    problem, and nothing is written. The Celery task id is chosen here, so the execution
    carries it before the task starts: a redelivered task finds its execution by it.
    """
    # The one import of a project module inside a function: the task's module imports these
    # services (a task loads its rows and calls one), so the enqueue imports the task here.
    from .tasks import run_workflow

    execution = execution_prepare(strategy=strategy, workflow=workflow, dry_run=dry_run)
    workflow = execution.workflow

    def enqueue_run():
        try:
            run_workflow.apply_async(
                args=[strategy.pk, workflow.pk if workflow else None],
                kwargs={"execution_id": execution.pk, "dry_run": dry_run},
                task_id=execution.task_id,
            )
        except KombuOperationalError as exc:  # the broker cannot be reached
            reason = f"The task queue cannot be reached ({exc}); the run was not started."
            waiting = WorkflowExecution.objects.filter(
                pk=execution.pk, status=ExecutionStatus.PENDING
            )
            waiting.update(
                status=ExecutionStatus.FAILED, completed_at=timezone.now(), error_message=reason
            )
            raise ServiceUnavailable(reason, extra={"queue": str(exc)}) from None

    transaction.on_commit(enqueue_run)
    return execution


def execution_prepare(*, strategy, workflow=None, dry_run=False):
    """A person's run to be run here, in this process (``run_workflow --sync``, tests): checked
    as ``execution_start`` checks it, and left pending for the caller's ``execution_run``."""
    workflow = workflow or strategy.workflow
    params_check(type=strategy.type, param=strategy.param, workflow=workflow)
    _runnable_check(strategy=strategy, workflow=workflow)
    return _execution_write(strategy=strategy, workflow=workflow, dry_run=dry_run)


def execution_record(*, strategy, workflow=None, dry_run=False, task_id):
    """The execution of a run beat scheduled, written by its task (``task_id``). Not checked:
    nobody is there to read a refusal, so the run itself fails and records why."""
    workflow = workflow or strategy.workflow
    return _execution_write(strategy=strategy, workflow=workflow, dry_run=dry_run, task_id=task_id)


def _execution_write(*, strategy, workflow, dry_run, task_id=None):
    return WorkflowExecution.objects.create(
        strategy=strategy,
        workflow=workflow,
        task_id=task_id or str(uuid.uuid4()),
        status=ExecutionStatus.PENDING,
        results={"dry_run": dry_run},
    )


def _runnable_check(*, strategy, workflow):
    """Refuse a run that could only fail: a workflow without steps (a draft), or a strategy
    without codes to run them on."""
    problems = {}
    steps, _ = strategy_steps(strategy_type=strategy.type, workflow=workflow)
    if not steps:
        name = workflow.name if workflow else strategy.type
        problems["workflow_id"] = f"The workflow {name!r} has no steps yet."
    if not strategy.codes.exists():
        problems["codes"] = "The strategy has no codes to run on."
    if problems:
        raise ApplicationError(f"{strategy.name} cannot run.", extra=problems)


def execution_stop(*, task_id, reason):
    """End, failed with ``reason``, the pending or running execution of Celery task
    ``task_id``, which its worker stopped from outside the run, and free its strategy's run
    lock. Returns how many ended."""
    stopped = list(
        WorkflowExecution.objects.filter(
            task_id=task_id, status__in=[ExecutionStatus.PENDING, ExecutionStatus.RUNNING]
        ).values_list("pk", "strategy_id")
    )
    WorkflowExecution.objects.filter(pk__in=[pk for pk, _ in stopped]).update(
        status=ExecutionStatus.FAILED, completed_at=timezone.now(), error_message=reason
    )
    for pk, strategy_id in stopped:
        run_lock_drop(strategy_id=strategy_id, execution_id=pk)
    return len(stopped)


def executions_sweep(*, now=None):
    """Mark failed, saying why, the executions no worker will finish (beat runs it every
    minute): running past their time limit (the worker was killed at the limit, or lost), or
    pending past a day (their message never reached a worker). Returns how many."""
    now = now or timezone.now()
    limit = settings.WORKFLOW_TIME_LIMIT_SECONDS
    overdue = WorkflowExecution.objects.filter(
        status=ExecutionStatus.RUNNING, started_at__lt=now - timedelta(seconds=limit)
    ).update(
        status=ExecutionStatus.FAILED, completed_at=now,
        error_message=f"Stopped by the sweep: still running past its time limit ({limit} s: "
                      "WORKFLOW_MAX_RUNTIME_SECONDS and a minute); its worker was killed at the "
                      "limit or lost before it could say so.",
    )  # fmt: skip
    gone = _executions_of_gone_workers(now=now)
    unstarted = WorkflowExecution.objects.filter(
        status=ExecutionStatus.PENDING, created_at__lt=now - timedelta(days=1)
    ).update(
        status=ExecutionStatus.FAILED, completed_at=now,
        error_message="Never started: no worker took it within a day (its message was lost, "
                      "e.g. by a Redis restart, or no worker consumes the queue).",
    )  # fmt: skip
    return gone + overdue + unstarted


def _executions_of_gone_workers(*, now):
    """Running executions whose worker is known gone: the strategy's lock names the run and
    a process of this host that no longer exists, or no lock is left although the run should
    have extended it (its worker stopped for LOCK_SECONDS)."""
    if not settings.REDIS_URL:
        return 0
    ended = 0
    for execution in WorkflowExecution.objects.filter(status=ExecutionStatus.RUNNING):
        owner = run_lock_owner(execution.strategy_id)
        if owner is not None and owner.get("execution_id") == execution.pk:
            why = owner_gone(owner)
        elif owner is None and execution.started_at < now - timedelta(seconds=LOCK_SECONDS):
            why = f"its worker stopped extending the run's lock for {LOCK_SECONDS} s (lost)"
        else:
            why = None
        if why is None:
            continue
        ended += WorkflowExecution.objects.filter(
            pk=execution.pk, status=ExecutionStatus.RUNNING
        ).update(status=ExecutionStatus.FAILED, completed_at=now,
                 error_message=f"Stopped by the sweep: {why}.")  # fmt: skip
        run_lock_drop(strategy_id=execution.strategy_id, execution_id=execution.pk)
    return ended


def workflow_metrics_compute(*, day):
    """Aggregate each workflow's executions started on ``day`` (UTC) into workflow_metrics.

    A run that never started (refused by a down task queue, or swept while pending) counts on
    the day it was made: it is one of the day's runs, and a failed one.
    """
    start = datetime.combine(day, time(), tzinfo=UTC)
    end = start + timedelta(days=1)
    executions = WorkflowExecution.objects.filter(
        Q(started_at__gte=start, started_at__lt=end)
        | Q(started_at__isnull=True, created_at__gte=start, created_at__lt=end),
        workflow__isnull=False,
    )
    per_workflow = executions.values("workflow_id").annotate(
        total=Count("id"),
        completed=Count("id", filter=Q(status=ExecutionStatus.COMPLETED)),
        finished=Count(
            "id", filter=Q(status__in=[ExecutionStatus.COMPLETED, ExecutionStatus.FAILED])
        ),
        duration=Avg(
            F("completed_at") - F("started_at"), filter=Q(status=ExecutionStatus.COMPLETED)
        ),
    )
    decisions = (
        Decision.objects.filter(workflow_execution__in=executions)
        .values("workflow_execution__workflow_id", "type", "status")
        .annotate(n=Count("id"))
    )
    by_type, by_status = {}, {}
    for row in decisions:
        workflow_id = row["workflow_execution__workflow_id"]
        statuses = by_status.setdefault(workflow_id, {})
        statuses[row["status"]] = statuses.get(row["status"], 0) + row["n"]
        if row["status"] == DecisionStatus.SUCCESS:
            types = by_type.setdefault(workflow_id, {})
            types[row["type"]] = types.get(row["type"], 0) + row["n"]
    orders = dict(
        Order.objects.filter(decision__workflow_execution__in=executions)
        .values_list("decision__workflow_execution__workflow_id")
        .annotate(n=Count("id"))
    )
    written = []
    for row in per_workflow:
        workflow_id = row["workflow_id"]
        metrics = {
            "total_executions": row["total"],
            "success_rate": round(row["completed"] / row["finished"], 4)
            if row["finished"]
            else None,
            "avg_duration": round(row["duration"].total_seconds(), 3) if row["duration"] else None,
            "decisions_by_type": {
                t: by_type.get(workflow_id, {}).get(t, 0) for t in ("buy", "sell", "hold")
            },
            "orders_placed": orders.get(workflow_id, 0),
            # Replies that could not be read as a decision, and models that could not be
            # asked: each a decision row of that status (decision.error_message says why).
            "parse_errors": by_status.get(workflow_id, {}).get(DecisionStatus.PARSING_ERROR, 0),
            "model_failures": by_status.get(workflow_id, {}).get(DecisionStatus.FAILED, 0),
        }
        record, _ = WorkflowMetrics.objects.update_or_create(
            workflow_id=workflow_id, date=day, defaults={"metrics": metrics}
        )
        written.append(record)
    return written


@transaction.atomic
def workflow_delete(*, workflow):
    """Delete a workflow and its versions; one that a strategy uses or that has run is kept."""
    delete_or_refuse(
        workflow,
        message=f"Workflow {workflow.name!r} is used by strategies or has executions.",
        extra={"id": "Referenced by strategies or executions; point them elsewhere first."},
    )


def execution_logs_purge(*, now=None, days=None, batch=500):
    """Drop the log (``results.execution_logs``) of the runs that ended before ``days``
    (``EXECUTION_LOG_RETENTION_DAYS``); the execution itself, its counts, failures, decisions,
    orders and transcript stay. Returns what it deleted."""
    days = settings.EXECUTION_LOG_RETENTION_DAYS if days is None else days
    now = now or timezone.now()
    before = now - timedelta(days=days)
    ended = WorkflowExecution.objects.filter(
        status__in=[ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED],
        created_at__lt=before,
        results__has_key="execution_logs",
    ).only("id", "results")
    executions = lines = 0
    while rows := list(ended.order_by("id")[:batch]):
        for row in rows:
            count = len(row.results.pop("execution_logs") or [])
            row.results["execution_logs_deleted"] = {"lines": count, "at": now.isoformat()}
            lines += count
        WorkflowExecution.objects.bulk_update(rows, ["results"])
        executions += len(rows)
    logger.info("retention: deleted the logs of %s executions made before %s (%s lines)",
                executions, before.isoformat(), lines)  # fmt: skip
    return {"execution_logs_deleted": executions, "log_lines_deleted": lines,
            "before": before.isoformat()}  # fmt: skip


# --- Backtests -----------------------------------------------------------------------------

BACKTEST_COMMISSIONS = ("ib_fixed", "none")


def _day(value, field):
    if isinstance(value, datetime):
        return value.date()
    if hasattr(value, "isoformat") and not isinstance(value, str):
        return value
    try:
        return datetime.strptime(str(value).strip(), "%Y-%m-%d").date()
    except ValueError:
        raise ApplicationError(
            f"{field}: {str(value)[:40]!r} is not a date.", extra={field: "use YYYY-MM-DD"}
        ) from None


def backtest_settings(*, start, end, commission="ib_fixed", slippage_bps="0", allow_short=False,
                      brackets=True, replay=None):  # fmt: skip
    """A backtest's settings from what a person typed: the period from the start of ``start``
    to the end of ``end`` (days, UTC), IB's fixed commissions or none, slippage in basis
    points (0 to 1000), whether the book works each entry's bracket (``brackets``), and a
    run whose agents' recorded replies answer instead of a model (``replay``).
    A bad value is refused naming its field."""
    from decimal import Decimal, InvalidOperation

    first, last = _day(start, "from"), _day(end, "to")
    if last < first:
        raise ApplicationError(
            "The period ends before it starts.", extra={"to": "on or after from"}
        )
    if commission not in BACKTEST_COMMISSIONS:
        raise ApplicationError(
            "Unknown commission.", extra={"commission": f"one of {', '.join(BACKTEST_COMMISSIONS)}"}
        )
    try:
        slippage = Decimal(str(slippage_bps))
    except (InvalidOperation, ValueError):
        slippage = None
    if slippage is None or not slippage.is_finite() or not 0 <= slippage <= 1000:
        raise ApplicationError(
            "Bad slippage.", extra={"slippage_bps": "a number of basis points from 0 to 1000"}
        )
    if replay and not StrategyProbeConversation.objects.filter(result__run_id=replay).exists():
        raise ApplicationError(
            f"Run {replay} has no recorded agent messages.",
            extra={"replay": "the run id of a backtest whose agents spoke"},
        )
    return BacktestSettings(
        start=datetime.combine(first, time(), tzinfo=UTC),
        end=datetime.combine(last, time(23, 59, 59), tzinfo=UTC),
        commission=commission,
        slippage_bps=slippage,
        allow_short=bool(allow_short),
        brackets=bool(brackets),
        replay=replay or None,
    )


def backtest_execute(*, strategy, settings, progress=None):
    """Backtest ``strategy`` here and store its results (``workflows.backtest``)."""
    return backtest_run(strategy=strategy, settings=settings, progress=progress)


def backtest_start(*, strategy, settings):
    """Queue a backtest for a worker (after this commits); returns its Celery task id."""
    from .tasks import backtest_task  # the task's module imports these services (see above)

    task_id = str(uuid.uuid4())
    arguments = {
        "strategy_id": strategy.pk,
        "start": settings.start.date().isoformat(),
        "end": settings.end.date().isoformat(),
        "commission": settings.commission,
        "slippage_bps": str(settings.slippage_bps),
        "allow_short": settings.allow_short,
        "brackets": settings.brackets,
        "replay": settings.replay,
    }

    def enqueue():
        try:
            backtest_task.apply_async(kwargs=arguments, task_id=task_id)
        except KombuOperationalError as exc:
            raise ServiceUnavailable(
                f"The task queue cannot be reached ({exc}); the backtest was not started.",
                extra={"queue": str(exc)},
            ) from None

    transaction.on_commit(enqueue)
    return task_id
