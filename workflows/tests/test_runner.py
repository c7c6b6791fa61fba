"""The engine run in-process on cached market data, with the real AutoGen team and the
offline model: what a person reads afterwards in the execution, its log and its transcript."""

import json
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from marketdata.models import MarketData
from marketdata.services import code_resolve
from marketdata.tests.factories import CodeFactory, cache_run_bars, live_at_cached_close
from orders.models import Order
from strategies.models import Decision
from tradingsite.exceptions import ApplicationError
from tradingsite.money import price_text
from workflows.agents import team
from workflows.agents.offline import OfflineChatCompletionClient, _role
from workflows.engine.locks import RedisRunLock
from workflows.models import AgentConversation, ExecutionStatus, WorkflowExecution
from workflows.services import (
    execution_cancel,
    execution_prepare,
    execution_run,
    executions_sweep,
    strategy_create,
    workflow_create,
)
from workflows.tasks import run_workflow
from workflows.templates import TEMPLATES

pytestmark = pytest.mark.django_db

TWO = TEMPLATES["two_indicator"]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


CENT = Decimal("0.01")


def cached_strategy(trends, *, workflow=None, param=None, type_="two_indicator", gateway=None):
    """A strategy whose codes have fresh daily and weekly bars in the cache; with a
    ``gateway``, its codes are resolved there and IB's price now is the bars' last close."""
    codes = []
    for symbol, trend in trends.items():
        if gateway is not None:
            gateway.list_symbol(symbol)  # a made-up symbol: listed at the gateway
        code = CodeFactory(symbol=symbol) if gateway is None else code_resolve(symbol=symbol)
        cache_run_bars(code, trend=trend, gateway=gateway)
        codes.append(code)
    return strategy_create(
        name="Test " + "+".join(trends), type=type_, workflow=workflow, param=param or {},
        codes=codes,
    )  # fmt: skip


def run(strategy, **kwargs):
    execution = execution_prepare(strategy=strategy, **kwargs)
    return execution_run(execution_id=execution.pk, **kwargs)


def messages(execution):
    return [log["message"] for log in execution.results["execution_logs"]]


def test_a_dry_run_decides_and_skips_the_order(gateway):  # the account: IB's
    strategy = cached_strategy({"UPCO": "up"}, gateway=gateway)
    execution = run(strategy, dry_run=True)

    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    assert execution.started_at <= execution.completed_at
    results = execution.results
    assert (results["symbols_processed"], results["decisions_made"], results["orders_placed"]) == (
        1, 1, 0,
    )  # fmt: skip
    decision = Decision.objects.get(workflow_execution=execution)
    assert decision.type == "buy"
    # target 4 x ATR and stop 2 x ATR away: r is -2 but for the prices' rounding to 4 places
    ratio = (decision.target_price - decision.current_price) / (
        decision.stop_loss - decision.current_price
    )
    assert decision.r_coefficient == ratio.quantize(Decimal("0.000001"))
    # IB's price now is the close to the cent, so r is -2 to within a cent's share of 2 ATR.
    assert abs(decision.r_coefficient + 2) < Decimal("0.01")
    log = messages(execution)
    assert any("1 Y / 1 day: 260 bars from cache" in line for line in log)
    assert any(line.startswith("risk reward_to_risk: pass") for line in log)
    assert any(line.startswith("dry run: skipped BUY") for line in log)
    assert not Order.objects.exists()
    speakers = list(
        AgentConversation.objects.filter(workflow_execution=execution).values_list(
            "agent_name", "message_type"
        )
    )
    assert speakers[:4] == [
        ("Orchestrator", "request"), ("TechnicalAnalyst", "response"),
        ("RiskManager", "response"), ("Executor", "response"),
    ]  # fmt: skip
    assert all(m.tokens_used > 0 for m in AgentConversation.objects.filter(message_type="response"))
    assert [(c["symbol"], c["bar"]) for c in results["charts"]] == [
        ("UPCO", "1 day"), ("UPCO", "1 week"),
    ]  # fmt: skip
    assert (execution.progress["completed_symbols"], execution.progress["percent"]) == (1, 100)
    assert execution.progress["total_steps"] == len(TWO["steps"])


def test_one_code_failing_leaves_the_others_going(gateway):
    strategy = cached_strategy({"UPCO": "up"}, gateway=gateway)
    uncached = CodeFactory(symbol="NODATA")  # no cache, and IB knows no such contract
    strategy.codes.add(uncached)
    execution = run(strategy, dry_run=True)
    assert execution.status == ExecutionStatus.COMPLETED
    assert execution.results["failed_symbols"] == ["NODATA"]
    assert execution.results["symbols_processed"] == 1
    refused = (
        "IB refused historical data for NODATA 1 Y / 1 day: error 200, No security definition "
        "has been found for the request"
    )
    assert f"NODATA failed: {refused}" in messages(execution)
    # Not a silent success: the run says how many codes failed, and why.
    assert execution.error_message == f"1 of 2 codes failed: NODATA: {refused}"
    assert execution.results["failures"] == {"NODATA": refused}
    assert execution.progress_shown() == (100, "Completed; 1 of 2 codes failed: NODATA")


def test_a_run_where_every_code_failed_shows_them_all_gone_through(settings):
    settings.IBKR_HOST, settings.IBKR_PORT, settings.IBKR_CONNECT_ATTEMPTS = "127.0.0.1", 9, 1
    strategy = cached_strategy({"UPCO": "up"})
    strategy.codes.set([CodeFactory(symbol="NODATA"), CodeFactory(symbol="NONE")])
    execution = run(strategy, dry_run=True)
    assert execution.status == ExecutionStatus.FAILED
    assert execution.error_message.startswith("Every code failed: NODATA: Cannot reach IB ")
    assert "; NONE: Cannot reach IB Gateway/TWS at 127.0.0.1:9" in execution.error_message
    progress = execution.progress
    assert (progress["completed_symbols"], progress["total_symbols"]) == (2, 2)


def test_a_hold_goes_no_further_than_the_gate():
    strategy = cached_strategy({"FLAT": "flat"})
    execution = run(strategy, dry_run=True)
    assert Decision.objects.get().type == "hold"
    assert "risk action: REFUSED - decision is hold" in messages(execution)


def test_an_unreadable_answer_is_a_parsing_error_and_no_order(monkeypatch):
    # The model is the network edge: swap in one whose Executor answers are unreadable.
    monkeypatch.setattr(
        team,
        "model_client_from_settings",
        lambda **_: OfflineChatCompletionClient(garbled_replies=3),
    )
    strategy = cached_strategy({"UPCO": "up"})
    execution = run(strategy)
    log = messages(execution)
    assert sum(line.startswith("parsing error:") for line in log) == 3
    assert any("no decision could be parsed after 3 attempts" in line for line in log)
    # The audit keeps it: a hold at the last close with its status, reasons and last reply.
    decision = Decision.objects.get()
    assert (decision.type, decision.status, decision.llm_model) == ("hold", "parsing_error",
                                                                    "offline")  # fmt: skip
    assert decision.error_message == (
        "attempt 1: no JSON object in the reply; attempt 2: decision: Value error, a buy needs "
        "both target_price and stop_loss; attempt 3: type: Input should be 'buy', 'sell' or "
        "'hold'"
    )
    assert '"type": "strong_buy"' in decision.analysis_text  # the third, last reply
    close = MarketData.objects.get(bar="1 day").data["bars"]["close"][-1]
    assert decision.current_price == Decimal(str(round(close, 4)))
    assert decision.execution_time_ms >= 0 and decision.confidence is None
    assert not Order.objects.exists()
    assert execution.status == ExecutionStatus.COMPLETED


class ExecutorSays(OfflineChatCompletionClient):
    """The offline analysts, and an Executor whose decision is ``reply``."""

    def __init__(self, reply):
        super().__init__()
        self.reply = reply

    def _answer(self, messages):
        return self.reply if _role(messages) == "executor" else super()._answer(messages)


def test_a_price_far_from_the_market_makes_no_decision_and_no_order(monkeypatch, gateway):
    """The decision's price is the order's limit and sizes it: a model's price that is not
    IB's price now would send an order far from the market."""
    strategy = cached_strategy({"UPCO": "down"}, gateway=gateway)
    close = Decimal(str(MarketData.objects.get(bar="1 day").data["bars"]["close"][-1]))
    live = gateway.price("UPCO")

    def executor_sells_at(price):
        reply = json.dumps({
            "type": "sell", "current_price": str(price), "analysis": "Falling.",
            "target_price": str(price * Decimal("0.8")), "stop_loss": str(price * Decimal("1.1")),
        })  # fmt: skip
        monkeypatch.setattr(team, "model_client_from_settings", lambda **_: ExecutorSays(reply))

    far = (close * Decimal("0.15")).quantize(Decimal("0.01"))
    executor_sells_at(far)
    execution = run(strategy)
    expected = (f"UPCO: the proposed price {far} is 85.0% from IB's price {live} now, more "
                "than 2%; no decision, no order")  # fmt: skip
    assert expected in messages(execution), messages(execution)
    assert not Decision.objects.exists() and not Order.objects.exists()

    executor_sells_at(close)
    run(strategy, dry_run=True)
    decision = Decision.objects.get()
    assert (decision.current_price, decision.proposed_price) == (live, close.quantize(CENT / 10000))


def test_a_decision_is_made_at_ibs_live_price_when_the_cached_bars_went_stale(monkeypatch, gateway):
    """The bars come from the cache (up to an hour old); the market has moved 0.5 % since.
    The decision, its ratios and the order's limit are IB's price now, taken at IB's time."""
    strategy = cached_strategy({"UPCO": "up"}, gateway=gateway)
    close = live_at_cached_close(gateway, strategy.codes.get())
    moved = gateway.set_price("UPCO", close * Decimal("1.005"))
    before = timezone.now()
    execution = run(strategy)

    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    decision = Decision.objects.get(workflow_execution=execution)
    assert decision.type == "buy"
    assert decision.current_price == moved and decision.proposed_price != moved
    assert abs(decision.proposed_price - close) < CENT  # the model's price: the bars' close
    # When the snapshot came (ib_insync stamps a tick as it arrives), before the decision.
    assert before <= decision.price_at <= decision.created_at
    order = Order.objects.get(decision=decision, role="entry")
    assert order.price <= moved and moved - order.price < CENT  # on IB's cent steps, not above
    assert any(f"decision buy at {price_text(moved)} (IB's" in line
               for line in messages(execution)), messages(execution)  # fmt: skip


def test_without_a_live_price_the_run_says_so_and_places_nothing(gateway):
    """A contract IB gives no price for (here, a conid the gateway does not know)."""
    strategy = cached_strategy({"UPCO": "up"})  # codes not resolved at the gateway
    execution = run(strategy)

    assert not Decision.objects.exists() and not Order.objects.exists()
    assert any(
        line.startswith("UPCO: no live price from IB (IB gave no usable price for UPCO")
        and line.endswith("no decision, no order")
        for line in messages(execution)
    )


def test_bad_params_refuse_a_run_asked_for_and_fail_a_scheduled_one():
    strategy = cached_strategy({"UPCO": "up"})
    strategy.param = {"period_1": "1 year"}  # saved around the service, as an old row might be
    strategy.save()
    with pytest.raises(ApplicationError, match=r"\(param\.period_1: .*1 year") as refused:
        execution_prepare(strategy=strategy)
    assert list(refused.value.extra["param"]) == ["period_1"]
    assert not WorkflowExecution.objects.exists()

    # Beat's call: nobody is there to read a refusal, so the run fails and says why.
    outcome = run_workflow.apply(args=[strategy.pk]).get()
    execution = WorkflowExecution.objects.get()
    assert outcome["execution_id"] == execution.pk
    assert execution.status == ExecutionStatus.FAILED
    assert "period_1" in execution.error_message


def test_a_cancelled_execution_does_not_start():
    strategy = cached_strategy({"UPCO": "up"})
    execution = execution_prepare(strategy=strategy)
    execution_cancel(execution=execution)
    execution = execution_run(execution_id=execution.pk)
    assert execution.status == ExecutionStatus.CANCELLED and not Decision.objects.exists()


def test_an_overlapping_run_is_skipped_and_logged():
    strategy = cached_strategy({"UPCO": "up"})
    held = RedisRunLock(strategy.pk)
    assert held.acquire()
    try:
        execution = run(strategy, dry_run=True)
    finally:
        held.release()
    assert execution.status == ExecutionStatus.CANCELLED
    assert execution.error_message.startswith("Skipped: another run of strategy")
    assert not Decision.objects.exists()


@pytest.fixture
def silent_redis(settings, monkeypatch):
    """A Redis that accepts connections and never answers: the run lock's home hung."""
    import socket

    from workflows.engine import locks

    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    settings.REDIS_URL = f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    monkeypatch.setattr(locks, "REDIS_TIMEOUT", 0.5)
    yield accepted
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def test_a_run_lock_redis_that_never_answers_fails_the_run_unstarted_saying_why(silent_redis):
    strategy = cached_strategy({"UPCO": "up"})
    execution = execution_prepare(strategy=strategy)

    execution = execution_run(execution_id=execution.pk)

    assert silent_redis, "the run did ask the silent Redis for its lock"
    assert execution.status == ExecutionStatus.FAILED
    assert execution.error_message.startswith(
        "Not started: the strategy's run lock could not be taken (TimeoutError"
    )
    assert execution.started_at is None and not Decision.objects.exists()


def test_a_redelivered_run_is_not_resumed_and_orphans_are_swept():
    strategy = cached_strategy({"UPCO": "up"})
    execution = execution_prepare(strategy=strategy)
    execution.status = ExecutionStatus.RUNNING
    execution.save()
    execution = execution_run(execution_id=execution.pk)
    assert execution.status == ExecutionStatus.FAILED
    assert "no order is sent twice" in execution.error_message

    from datetime import timedelta

    stuck = execution_prepare(strategy=strategy)
    stuck.status, stuck.started_at = ExecutionStatus.RUNNING, timezone.now() - timedelta(hours=2)
    stuck.save()
    assert executions_sweep() == 1
    stuck.refresh_from_db()
    assert stuck.status == ExecutionStatus.FAILED
    assert stuck.error_message.startswith("Stopped by the sweep: still running past its time limit")


def test_legacy_strategy_without_workflow_runs_its_type_template(gateway):
    strategy = cached_strategy({"DOWNCO": "down"}, gateway=gateway)
    assert strategy.workflow_id is None
    execution = run(strategy, dry_run=True)
    assert execution.status == ExecutionStatus.COMPLETED
    assert Decision.objects.get().type == "sell"
    assert "legacy two_indicator template" in messages(execution)[0]


def test_a_redelivered_scheduled_run_is_one_execution_and_one_order(gateway):
    strategy = cached_strategy({"UPCO": "up"}, gateway=gateway)
    beat_task_id = str(uuid.uuid4())
    first = run_workflow.apply(args=[strategy.pk], task_id=beat_task_id).get()
    # The broker hands the same message out again (its worker was presumed lost).
    again = run_workflow.apply(args=[strategy.pk], task_id=beat_task_id).get()

    execution = WorkflowExecution.objects.get()
    assert first["execution_id"] == again["execution_id"] == execution.pk
    assert execution.task_id == beat_task_id
    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    assert Decision.objects.count() == 1 and Order.objects.count() == 3  # one bracket


def test_a_scheduled_run_redelivered_after_its_worker_died_is_failed_not_rerun():
    strategy = cached_strategy({"UPCO": "up"})
    beat_task_id = str(uuid.uuid4())
    # The first delivery started the run, then its worker died: the execution stays running.
    died = WorkflowExecution.objects.create(
        strategy=strategy, task_id=beat_task_id, status=ExecutionStatus.RUNNING,
        started_at=timezone.now(), results={"dry_run": False},
    )  # fmt: skip

    outcome = run_workflow.apply(args=[strategy.pk], task_id=beat_task_id).get()

    assert outcome["execution_id"] == died.pk and outcome["status"] == ExecutionStatus.FAILED
    died.refresh_from_db()
    assert died.status == ExecutionStatus.FAILED
    assert "no order is sent twice" in died.error_message
    assert WorkflowExecution.objects.count() == 1
    assert not Decision.objects.exists() and not Order.objects.exists()


def test_a_run_that_loses_its_lock_stops_and_says_why():
    steps = [
        {"type": "fetch_data", "config": {"period": "1 Y", "bar": "1 day"}},
        {"type": "decide", "config": {}},
        {"type": "wait", "config": {"seconds": 2}},
    ]
    workflow = workflow_create(name="Paced", type="custom", steps=steps)
    strategy = cached_strategy({"AAA": "up", "BBB": "up"}, workflow=workflow, type_="custom")
    server = redis.Redis.from_url(settings.REDIS_URL)
    key = f"tradingsite:strategy:{strategy.pk}:run"

    def expire_during_the_wait():  # as a Redis restart without persistence does
        deadline = time.monotonic() + 10
        while not server.exists(key) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.5)
        server.delete(key)

    expiring = threading.Thread(target=expire_during_the_wait)
    expiring.start()
    execution = run(strategy, dry_run=True)
    expiring.join()

    assert execution.status == ExecutionStatus.FAILED
    assert execution.error_message.startswith(
        f"Stopped: the run lost its lock on strategy {strategy.pk}: Redis lost it (restarted or "
        "flushed), so another run may have started"
    )
    assert messages(execution)[-1] == execution.error_message
    assert not Decision.objects.filter(code__symbol="BBB").exists()


def test_a_second_run_on_the_same_bars_does_not_buy_the_held_symbol_again(gateway, wait_for):
    """The demo runs every minute: its second run sees the same bars and the same buy, and
    the risk gate refuses it while the first bracket's entry is held (the issue's ORCL -152)."""
    strategy = cached_strategy({"UPCO": "up"}, gateway=gateway)
    first = run(strategy)
    assert first.status == ExecutionStatus.COMPLETED, first.error_message
    entry = Order.objects.get(role="entry")
    assert sorted(Order.objects.filter(parent_order=entry).values_list("role", flat=True)) == [
        "stop_loss", "take_profit"
    ]  # fmt: skip
    assert any(line.startswith("bracket BUY") for line in messages(first)), messages(first)

    second = run(strategy)
    assert second.status == ExecutionStatus.COMPLETED, second.error_message
    assert second.results["orders_placed"] == 0
    refused = [line for line in messages(second) if line.startswith("risk entries_per_symbol")]
    assert refused == [
        "risk entries_per_symbol: REFUSED - 1 open or working on UPCO (maximum 1; held "
        f"{Order.objects.get(pk=entry.pk).filled_quantity:f})"
    ], messages(second)
    assert Order.objects.count() == 3  # still the one bracket


def test_a_run_draws_no_png_its_page_draws_each_chart_when_first_viewed(gateway, admin_client):
    from datetime import datetime

    from marketdata.models import OhlcvBar
    from workflows.charts import chart_render

    strategy = cached_strategy({"UPCO": "up"}, gateway=gateway)
    code = strategy.codes.get()
    execution = run(strategy, dry_run=True)
    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    assert list(Path(settings.MEDIA_ROOT).rglob("*.png")) == []  # made only when asked
    assert any(line.endswith(f"chart executions/{execution.pk}/UPCO_1day.png")
               for line in messages(execution))  # fmt: skip

    page = admin_client.get(f"/admin/workflows/workflowexecution/{execution.pk}/change/",
                            secure=True).content.decode()  # fmt: skip
    image = f"/admin/workflows/workflowexecution/{execution.pk}/charts/UPCO_1day.png"
    assert f'<img src="{image}"' in page
    assert f'<img src="{image.replace("1day", "1week")}"' in page

    def served(url):
        answer = admin_client.get(url, secure=True)
        assert (answer.status_code, answer["Content-Type"]) == (200, "image/png")
        return b"".join(answer.streaming_content)

    # The chart the run's bars make (with their dates on the x axis), as it would have drawn it.
    daily = MarketData.objects.get(conid=code.conid, bar="1 day")
    chart_render(execution_id=0, symbol="UPCO", bar="1 day", document=daily.data)
    expected = (Path(settings.MEDIA_ROOT) / "executions" / "0" / "UPCO_1day.png").read_bytes()
    assert served(image) == expected
    drawn = Path(settings.MEDIA_ROOT) / "executions" / str(execution.pk) / "UPCO_1day.png"
    assert drawn.read_bytes() == expected  # kept: the next view serves the file
    assert served(image.replace("1day", "1week")).startswith(b"\x89PNG")

    # The cache purged: the same bars from the bar store draw the same chart.
    bars = daily.data["bars"]
    OhlcvBar.objects.bulk_create(
        OhlcvBar(ticker=code, timeframe="1Day", timestamp=datetime.fromisoformat(moment),
                 open=o, high=h, low=lo, close=c, volume=int(v), source="ib")
        for moment, o, h, lo, c, v in zip(bars["time"], bars["open"], bars["high"],
                                           bars["low"], bars["close"], bars["volume"], strict=True)
    )  # fmt: skip
    MarketData.objects.all().delete()
    drawn.unlink()
    assert served(image) == expected
    assert admin_client.get(image.replace("UPCO", "MSFT"), secure=True).status_code == 404
    # Without the cache row or stored bars, the weekly chart not drawn yet cannot be.
    (drawn.parent / "UPCO_1week.png").unlink()
    assert admin_client.get(image.replace("1day", "1week"), secure=True).status_code == 404


def test_progress_is_committed_without_waiting_for_the_disk_the_end_is_not(gateway):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    strategy = cached_strategy({"UPCO": "up"}, gateway=gateway)
    with CaptureQueriesContext(connection) as queries:
        execution = run(strategy, dry_run=True)
    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    sqls = [q["sql"] for q in queries.captured_queries]
    progress = [i for i, sql in enumerate(sqls)
                if sql.startswith('UPDATE "workflow_execution" SET "progress"')
                and '"completed_at"' not in sql]  # fmt: skip
    assert len(progress) == len(TWO["steps"])  # one per step of the one code
    assert all(sqls[i - 1] == "SET LOCAL synchronous_commit TO OFF" for i in progress)
    end = max(i for i, sql in enumerate(sqls) if '"completed_at"' in sql)
    assert "synchronous_commit" not in sqls[end - 1]


def test_the_result_backend_gets_a_runs_progress_per_code_not_per_step(gateway, monkeypatch):
    from workflows.engine import runner

    monkeypatch.setattr(runner, "PROGRESS_STATE_SECONDS", 3600)  # no step is late enough
    strategy = cached_strategy({"UPCO": "up", "DNCO": "down"}, gateway=gateway)
    sent = []
    store = run_workflow.backend.store_result

    def observed(task_id, result, state, **kwargs):
        sent.append((state, result))
        return store(task_id, result, state, **kwargs)

    monkeypatch.setattr(run_workflow.backend, "store_result", observed)
    run_workflow.apply(args=[strategy.pk], kwargs={"dry_run": True}, task_id=str(uuid.uuid4()))
    execution = WorkflowExecution.objects.get()
    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    progress = [meta for state, meta in sent if state == "PROGRESS"]
    # Each code's first step, and the wait between the two codes as it starts.
    assert [(m["current_symbol"], m["step_type"]) for m in progress] == [
        ("DNCO", "fetch_data"), ("DNCO", "wait"), ("UPCO", "fetch_data"),
    ]  # fmt: skip
