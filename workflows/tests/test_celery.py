"""Workflows run by a real Celery worker process, against Redis, PostgreSQL (the test
database), the loopback IB gateway and the offline model."""

import time
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

import pytest
from celery.result import AsyncResult

from marketdata.services import code_resolve
from marketdata.tests.factories import cache_market_data, cache_run_bars
from orders.models import Order
from strategies.models import Decision
from tradingsite.celery import app as celery_app
from workflows.models import AgentConversation, ExecutionStatus
from workflows.services import execution_cancel, execution_start, strategy_create, workflow_create
from workflows.templates import TEMPLATES

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
FINAL = {ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED}


def wait_final(execution, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        execution.refresh_from_db()
        if execution.status in FINAL:
            return execution
        time.sleep(0.2)
    pytest.fail(f"execution {execution.pk} still {execution.status} after {timeout}s")


def rising_strategy(template, gateway, symbols=("AAPL",), **kwargs):
    workflow = workflow_create(name=f"{template} test", type=template, **{
        k: TEMPLATES[template][k] for k in ("steps", "default_params")
    })  # fmt: skip
    codes = []
    for symbol in symbols:
        code = code_resolve(symbol=symbol)
        cache_run_bars(code, gateway=gateway)
        codes.append(code)
    return strategy_create(
        name=f"{template} strategy", type=template, workflow=workflow, codes=codes, **kwargs
    )


def test_a_two_indicator_run_from_start_to_completed(worker_gateway):
    strategy = rising_strategy("two_indicator", worker_gateway)
    execution = wait_final(execution_start(strategy=strategy))

    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    assert execution.task_id and execution.started_at and execution.completed_at
    assert execution.results["decisions_made"] == 1 and execution.results["orders_placed"] == 1
    decision = Decision.objects.get(workflow_execution=execution)
    order = Order.objects.get(decision=decision, role="entry")
    assert (decision.type, order.side, order.order_type) == ("buy", "BUY", "LMT")
    assert order.ibkr_order_id is not None
    # The decision's price on IB's steps of a cent, rounded down for a buy.
    assert order.price == decision.current_price.quantize(Decimal("0.01"), rounding=ROUND_FLOOR)
    assert AgentConversation.objects.filter(workflow_execution=execution).count() >= 4
    progress = execution.progress
    assert progress == {"current_step": 8, "step_type": None, "total_steps": 8,
                        "current_symbol": "AAPL", "completed_symbols": 1, "total_symbols": 1,
                        "percent": 100}  # fmt: skip
    result = AsyncResult(execution.task_id, app=celery_app)
    assert result.state == "SUCCESS"
    assert result.result["orders_placed"] == 1


def test_an_autogen_multi_agent_run(worker_gateway):
    strategy = rising_strategy("autogen_multi_agent", worker_gateway)
    execution = wait_final(execution_start(strategy=strategy, dry_run=True))
    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    log = [line["message"] for line in execution.results["execution_logs"]]
    assert "consolidated 1 analyses" in log
    assert any(line.startswith("dry run: skipped BUY") for line in log)
    agents = set(
        AgentConversation.objects.filter(workflow_execution=execution).values_list(
            "agent_name", flat=True
        )
    )
    assert {"TechnicalAnalyst", "RiskManager", "Executor"} <= agents
    assert not Order.objects.exists()


def test_cancel_stops_a_running_execution_between_steps(worker_gateway):
    steps = [
        {"type": "fetch_data", "config": {"period": "1 Y", "bar": "1 day"}},
        {"type": "decide", "config": {}},
        {"type": "wait", "config": {"seconds": 3}},
    ]
    workflow = workflow_create(name="slow", type="custom", steps=steps)
    codes = [code_resolve(symbol=s) for s in ("AAPL", "MSFT")]
    for code in codes:
        cache_market_data(code, period="1 Y", bar="1 day", trend="up")
    strategy = strategy_create(name="slow", type="custom", workflow=workflow, codes=codes)
    execution = execution_start(strategy=strategy)

    deadline = time.monotonic() + 60
    seen_progress = None
    while time.monotonic() < deadline:
        state = AsyncResult(execution.task_id, app=celery_app)
        if state.state == "PROGRESS" and state.info.get("step_type") == "wait":
            seen_progress = state.info
            break
        time.sleep(0.1)
    assert seen_progress and seen_progress["current_symbol"] == "AAPL"
    execution_cancel(execution=execution)
    execution = wait_final(execution)
    assert execution.status == ExecutionStatus.CANCELLED
    assert list(Decision.objects.values_list("code__symbol", flat=True)) == ["AAPL"]
    # The worker stops at the next step boundary and records when it stopped.
    deadline = time.monotonic() + 15
    while execution.completed_at is None and time.monotonic() < deadline:
        time.sleep(0.2)
        execution.refresh_from_db()
    assert execution.completed_at is not None
    log = [line["message"] for line in execution.results["execution_logs"]]
    assert log[-1] == "Cancelled between steps."


def test_a_run_while_another_holds_the_strategy_is_skipped(worker_gateway):
    from workflows.engine.locks import strategy_run_lock

    strategy = rising_strategy("two_indicator", worker_gateway)
    held = strategy_run_lock(strategy.pk)
    assert held.acquire()  # as a run in another worker would
    try:
        execution = wait_final(execution_start(strategy=strategy))
    finally:
        held.release()
    assert execution.status == ExecutionStatus.CANCELLED
    assert execution.error_message.startswith("Skipped: another run of strategy")
    assert not Decision.objects.filter(strategy=strategy).exists()


def test_beat_calls_the_task_with_the_strategy_id_alone(worker_gateway):
    from workflows.models import WorkflowExecution
    from workflows.tasks import run_workflow

    strategy = rising_strategy("two_indicator", worker_gateway)
    sent = run_workflow.apply_async(args=[strategy.pk])  # as the PeriodicTask sends it
    deadline = time.monotonic() + 60
    while not WorkflowExecution.objects.filter(strategy=strategy).exists():
        assert time.monotonic() < deadline, "the worker made no execution"
        time.sleep(0.2)
    execution = wait_final(WorkflowExecution.objects.get(strategy=strategy))
    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    assert execution.task_id == sent.id and execution.workflow == strategy.workflow
    assert Decision.objects.filter(workflow_execution=execution).count() == 1
