"""The demo as ``make run`` serves it, walked through as the README tells a person to: the first
run buys AAPL as a bracket whose stop and target work at IB, the next run does not buy it again
while it is held, ``manage.py ibgateway_price`` walks the price through the target (the position
closes with its P&L, the stop is cancelled), and the kill switch leaves nothing working.

The processes are ``make run``'s (``tradingsite/bin/run.sh``), each a real process: the loopback
gateway (``manage.py ibgateway`` with the demo's bars), a Celery worker and ``manage.py
ib_listen``. The gateway stands on the suite's pinned market date (``--date``) where ``make
run``'s follows the real clock, and it does not tick, so prices move only when the test moves
them. The broker is a Redis of the test's own, so that no other test's worker takes a run. Beat
is not started: the test sends the task beat sends, with the strategy's id alone.
"""

import os
import re
import subprocess
import sys
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from ibgateway.tests.support import connect
from orders.models import Order, OrderRole, OrderStatus, Position, Trade
from strategies.models import Decision, Strategy
from tradingsite.management.commands.load_demo import DEMO_BARS_DIR, DEMO_STRATEGY
from tradingsite.money import price_text, quantity_text
from tradingsite.testing.faults import RedisServer, WorkerProcess, eventually, free_port
from tradingsite.testing.market import write_bars
from workflows.models import ExecutionStatus, WorkflowExecution

pytestmark = pytest.mark.django_db(transaction=True)

D = Decimal
WORKING_AT_IB = ("PendingSubmit", "PreSubmitted", "Submitted")
WORKER_CLIENT_ID = 60  # the worker leases its own id; this one names the master id (+ 3)
MASTER_CLIENT_ID = WORKER_CLIENT_ID + 3  # ib_listen's, as run.sh derives it
BOOK_CLIENT_ID = 90  # the test's own look at IB's book


def site_env(**extra):
    db = connection.settings_dict
    return {
        **os.environ,
        "TESTING": "true",
        "PYTHONUNBUFFERED": "1",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        **extra,
    }


def manage(*arguments, env=None, timeout=60):
    return subprocess.run(
        [sys.executable, "manage.py", *arguments], cwd=settings.BASE_DIR, env=env or site_env(),
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


@pytest.fixture
def make_run(tmp_path, pinned_market_date, settings):
    """``make run``'s processes on the test database, after ``load_demo``."""
    from tradingsite.broker import reset_broker

    port = free_port()
    gateway = subprocess.Popen(
        [sys.executable, "manage.py", "ibgateway", "--host", "127.0.0.1", "--port", str(port),
         "--bars-dir", str(settings.BASE_DIR / DEMO_BARS_DIR), "--master-client-id",
         str(MASTER_CLIENT_ID), "--date", pinned_market_date.isoformat()],
        cwd=settings.BASE_DIR, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    broker = RedisServer(tmp_path)
    started = [gateway]
    try:
        assert "listening" in gateway.stdout.readline(), gateway.stderr.read()
        broker.start()
        worker = WorkerProcess(pool="solo", broker_url=broker.url(), gateway_port=port,
                               client_id=WORKER_CLIENT_ID, workdir=tmp_path).start()  # fmt: skip
        started.append(worker)
        listener = subprocess.Popen(
            [sys.executable, "manage.py", "ib_listen"], cwd=settings.BASE_DIR,
            env=site_env(IBKR_HOST="127.0.0.1", IBKR_PORT=str(port),
                         IBKR_MASTER_CLIENT_ID=str(MASTER_CLIENT_ID)),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        started.append(listener)
        assert listener.stdout.readline().startswith("ib_listen: IB at"), listener.stderr.read()
        settings.IBKR_HOST, settings.IBKR_PORT = "127.0.0.1", port
        settings.IBKR_MASTER_CLIENT_ID = MASTER_CLIENT_ID
        settings.IBKR_PACING_CLOCK = "simulated"
        reset_broker()
        call_command("load_demo")
        book = connect(SimpleNamespace(port=port), client_id=BOOK_CLIENT_ID)
        yield SimpleNamespace(port=port, broker_url=broker.url(), worker=worker, book=book)
        book.disconnect()
    finally:
        reset_broker()
        for process in reversed(started):
            if isinstance(process, WorkerProcess):
                process.stop()
            else:
                process.terminate()
                process.communicate(timeout=20)
        broker.stop()


def beat_runs(strategy, site):
    """What beat does every minute: the task with the strategy's id alone; returns the run
    once the worker has finished it."""
    from tradingsite.celery import app
    from workflows.tasks import run_workflow

    before = set(WorkflowExecution.objects.values_list("pk", flat=True))
    with app.connection_for_write(site.broker_url) as broker:
        run_workflow.apply_async(args=[strategy.pk], connection=broker)

    def finished():
        return (
            WorkflowExecution.objects.exclude(pk__in=before)
            .filter(status__in=(ExecutionStatus.COMPLETED, ExecutionStatus.FAILED))
            .first()
        )

    execution = eventually(finished, timeout=120)
    assert execution, f"the worker did not finish the run:\n{site.worker.output()[-3000:]}"
    assert execution.status == ExecutionStatus.COMPLETED, execution.error_message
    return execution


def working_at_ib(site):
    """IB's own book, read by a client of its own: {our order row id: (type, limit, aux,
    status)} of every order IB still works, whichever client placed it."""
    trades = site.book.reqAllOpenOrders()
    return {
        int(t.order.orderRef.removeprefix("ts-")): (
            t.order.orderType, D(str(t.order.lmtPrice)), D(str(t.order.auxPrice)),
            t.orderStatus.status,
        )
        for t in trades
        if t.orderStatus.status in WORKING_AT_IB
    }  # fmt: skip


def reload(row):
    return type(row).objects.get(pk=row.pk)


def admin_page(client, path):
    page = client.get(path, secure=True)
    assert page.status_code == 200, path
    return " ".join(page.content.decode().split())


def test_the_demo_buys_aapl_as_a_bracket_and_walks_through_its_target(make_run, client, admin_user):
    site = make_run
    strategy = Strategy.objects.get(name=DEMO_STRATEGY)
    client.force_login(admin_user)

    first = beat_runs(strategy, site)
    decision = Decision.objects.get(workflow_execution=first, code__symbol="AAPL")
    assert decision.type == "buy", decision.analysis
    entry = Order.objects.get(decision=decision, role=OrderRole.ENTRY)
    target = Order.objects.get(parent_order=entry, role=OrderRole.TAKE_PROFIT)
    stop = Order.objects.get(parent_order=entry, role=OrderRole.STOP_LOSS)
    assert (entry.side, target.side, stop.side) == ("BUY", "SELL", "SELL")
    assert (target.order_type, target.price) == ("LMT", decision.target_price.quantize(D("0.01")))
    assert stop.order_type == "STP" and stop.stop_price < entry.price < target.price
    assert eventually(lambda: reload(entry).status == OrderStatus.FILLED, timeout=15)
    entry = reload(entry)
    position = Position.objects.get(instrument_id=entry.instrument_id, closed_at__isnull=True)
    assert position.quantity == entry.quantity == target.quantity == stop.quantity

    # IB works both children, the stop waiting for its price; the entry is done.
    at_ib = working_at_ib(site)
    assert {pk: at_ib.get(pk) for pk in (entry.pk, target.pk, stop.pk)} == {
        entry.pk: None,
        target.pk: ("LMT", target.price, D(0), "Submitted"),
        stop.pk: ("STP", D(0), stop.stop_price, "PreSubmitted"),
    }
    # ... and the admin shows the entry with its two children working.
    page = admin_page(client, f"/admin/orders/order/{entry.pk}/change/")
    assert (
        f'take profit #{target.pk}</a> (submitted), <a href="/admin/orders/order/{stop.pk}'
        f'/change/">stop loss #{stop.pk}</a> (submitted)'
    ) in page
    assert (
        f"<title>Order #{entry.pk}: BUY {quantity_text(entry.quantity)} AAPL LMT @ "
        f"{price_text(entry.price)} (filled)"
    ) in page

    # The order list: the filled entry, the take profit at its limit and the stop loss at its
    # trigger, both working.
    listing = admin_page(client, "/admin/orders/order/")
    row = re.compile(r'<tr><td class="action-checkbox">.*? value="(\d+)"(.*?)</tr>')
    rows = {int(pk): cells for pk, cells in row.findall(listing)}
    for order, columns in (
        (entry, ("Buy", "Limit", price_text(entry.price), "-", "Filled")),
        (target, ("Sell", "Limit", price_text(target.price), "-", "Submitted")),
        (stop, ("Sell", "Stop", "-", price_text(stop.stop_price), "Submitted")),
    ):
        side, kind, price, stop_price, status = columns
        assert 'title="AAPL (265598)"' in rows[order.pk]
        assert (
            f'<td class="field-side">{side}</td><td class="field-quantity_shown">'
            f'{quantity_text(entry.quantity)}</td><td class="field-order_type">{kind}</td>'
            f'<td class="field-price_shown">{price}</td><td class="field-stop_price_shown">'
            f'{stop_price}</td><td class="field-status">{status}</td>'
        ) in rows[order.pk], rows[order.pk]

    # A minute later the demo runs again on the same bars: AAPL is held, no second buy.
    second = beat_runs(strategy, site)
    assert Decision.objects.get(workflow_execution=second, code__symbol="AAPL").type == "buy"
    refusal = [
        log["message"] for log in second.results["execution_logs"]
        if log["message"].startswith("risk entries_per_symbol") and log.get("symbol") == "AAPL"
    ]  # fmt: skip
    assert refusal == [
        "risk entries_per_symbol: REFUSED - 1 open or working on AAPL (maximum 1; held "
        f"{entry.filled_quantity:f})"
    ]
    assert Order.objects.filter(instrument_id=entry.instrument_id).count() == 3

    # The README's walk: the price through the target, from outside the running gateway.
    through = target.price + D("0.50")
    moved = manage("ibgateway_price", "AAPL", str(through), "--port", str(site.port))
    assert moved.returncode == 0, moved.stderr
    assert eventually(lambda: reload(position).closed_at is not None, timeout=15)
    assert eventually(lambda: reload(stop).status == OrderStatus.CANCELLED, timeout=15)
    assert reload(target).status == OrderStatus.FILLED
    assert reload(stop).error_message == (
        f"Cancelled by one-cancels-all: the take profit (order {target.pk}) filled."
    )
    trade = Trade.objects.get(order=entry)
    assert (trade.exit_price, trade.exit_quantity) == (through, entry.filled_quantity)
    assert trade.realized_pnl == (through - entry.avg_fill_price) * entry.filled_quantity > 0
    assert not set(working_at_ib(site)) & {target.pk, stop.pk}
    page = admin_page(client, f"/admin/orders/trade/{trade.pk}/change/")
    assert f'<span class="pnl pnl-positive">+{trade.realized_pnl:,.2f}</span>' in page

    # Back at the bars' close, the next run buys AAPL again: its new bracket works at IB when
    # the kill switch is pulled, and the kill switch leaves nothing working and says so.
    back = manage("ibgateway_price", "AAPL", str(entry.avg_fill_price), "--port", str(site.port))
    assert back.returncode == 0, back.stderr
    third = beat_runs(strategy, site)
    again = Order.objects.get(decision__workflow_execution=third, decision__code__symbol="AAPL",
                              role=OrderRole.ENTRY)  # fmt: skip
    assert eventually(lambda: reload(again).status == OrderStatus.FILLED, timeout=15)
    children = Order.objects.filter(parent_order=again)
    assert eventually(lambda: set(working_at_ib(site)) >= {c.pk for c in children}, timeout=15)
    response = client.post("/admin/dashboard/kill/", secure=True)
    assert response.status_code == 302
    assert eventually(lambda: not working_at_ib(site), timeout=15)
    assert eventually(
        lambda: (
            not Order.objects.filter(
                status__in=(OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED)
            ).exists()
        ),
        timeout=15,
    )
    assert {c.status for c in children.all()} == {OrderStatus.CANCELLED}
    assert not Strategy.objects.filter(active=True).exists()
    page = admin_page(client, "/admin/")
    assert "<strong>Trading is halted</strong> (kill switch by admin at" in page


def test_the_demo_bars_are_the_suites_rising_walk(tmp_path):
    """``tradingsite/demo_bars/AAPL.csv`` is ``write_bars``' "up" walk at AAPL's price level, so
    that it can be made again and the suite's checks of that walk hold for it."""
    made = write_bars(tmp_path, "AAPL", trend="up", start=125.0)
    assert made.read_text() == (settings.BASE_DIR / DEMO_BARS_DIR / "AAPL.csv").read_text()
    run_sh = (settings.BASE_DIR / "tradingsite" / "bin" / "run.sh").read_text()
    assert f"--bars-dir {DEMO_BARS_DIR} " in run_sh  # make run's gateway serves them
