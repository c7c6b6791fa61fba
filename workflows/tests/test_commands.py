"""``manage.py run_workflow``: queued, run here with --sync, and its refusals."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from marketdata.services import code_resolve
from marketdata.tests.factories import cache_market_data
from orders.models import Order, Position
from workflows.models import ExecutionStatus, WorkflowExecution
from workflows.services import strategy_create
from workflows.tests.test_runner import cached_strategy

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def run_workflow(*args):
    out = StringIO()
    call_command("run_workflow", *args, stdout=out)
    return out.getvalue()


def test_sync_dry_run_by_name_prints_the_log_and_the_outcome(gateway):
    strategy = cached_strategy({"UPCO": "up"}, gateway=gateway)
    output = run_workflow(strategy.name, "--sync", "--dry-run")
    execution = WorkflowExecution.objects.get(strategy=strategy)
    assert execution.status == ExecutionStatus.COMPLETED
    assert "[UPCO]" in output
    assert output.rstrip().endswith(
        f"Execution {execution.pk} completed: 1 codes, 1 decisions, 0 orders"
    )


def test_a_sync_run_records_what_ib_filled_before_it_exits(gateway):
    code = code_resolve(symbol="AAPL")
    daily = cache_market_data(code, period="1 Y", bar="1 day", trend="up")
    cache_market_data(code, period="2 Y", bar="1 week", trend="up")
    strategy = strategy_create(name="Sync", type="two_indicator", param={}, codes=[code])
    close = daily.data["bars"]["close"][-1]
    gateway.set_price("AAPL", close * 0.99)  # the buy limit at the close is marketable

    output = run_workflow(strategy.name, "--sync")

    order = Order.objects.get(role="entry")
    assert (order.status, order.executions.count()) == ("filled", 1)
    assert Position.objects.get(closed_at__isnull=True).quantity == order.quantity
    assert "\nReconciled with IB: " in output, output


def test_queued_by_id_waits_for_a_worker(django_capture_on_commit_callbacks):
    strategy = cached_strategy({"UPCO": "up"})
    with django_capture_on_commit_callbacks(execute=False) as queued:
        output = run_workflow(str(strategy.pk))
    execution = WorkflowExecution.objects.get(strategy=strategy)
    assert execution.status == ExecutionStatus.PENDING
    assert output == f"Execution {execution.pk} queued (task {execution.task_id}); " \
                     "a Celery worker runs it.\n"  # fmt: skip
    assert len(queued) == 1  # the task is sent once the execution is committed


def test_refusals_name_the_problem_and_start_nothing():
    strategy = cached_strategy({"UPCO": "up"})
    with pytest.raises(CommandError, match="No strategy 'nothing'"):
        run_workflow("nothing")
    with pytest.raises(CommandError, match="No strategy '²'"):  # a digit, but no number
        run_workflow("²")
    strategy.param = {"bar_2": "1 fortnight"}
    strategy.save()
    with pytest.raises(CommandError, match=r"The strategy is not valid\. \(param\.bar_2: "):
        run_workflow(strategy.name, "--sync")
    assert not WorkflowExecution.objects.exists()
