"""Management commands refuse a bad argument with a CommandError naming it, not a traceback."""

import os
import signal
import socket
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError

from ibgateway.control import ControlError, set_price
from ibgateway.tests.support import FRIDAY_EVENING, D, connect, fills_of, status, stock
from tradingsite.broker.ib import ibapi

BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("username", "reason"),
    [
        ("", "--username: This field cannot be blank."),
        ("a" * 200, "--username: Ensure this value has at most 150 characters (it has 200)."),
    ],
)
def test_ensure_admin_names_a_username_it_cannot_create(username, reason):
    with pytest.raises(CommandError) as refused:
        call_command("ensure_admin", f"--username={username}")
    assert str(refused.value) == reason
    assert not User.objects.exists()


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        (["--port", "99999"], "--port 99999: a port is 0 to 65535 (0 picks a free one)."),
        (["--port", "-1"], "--port -1: a port is 0 to 65535 (0 picks a free one)."),
        (
            ["--date", "2025-02-30"],
            "--date: '2025-02-30' is not a date written YYYY-MM-DD (e.g. 2025-03-14).",
        ),
    ],
)
def test_ibgateway_names_a_port_or_date_that_is_not_one(arguments, reason):
    with pytest.raises(CommandError) as refused:
        call_command("ibgateway", *arguments)
    assert str(refused.value) == reason


def test_ibgateway_refuses_a_bars_folder_that_is_not_there(tmp_path):
    missing = tmp_path / "bars"
    with socket.socket() as taken:  # were the folder accepted, it would stop here, not serve
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(CommandError) as refused:
            call_command("ibgateway", "--port", str(taken.getsockname()[1]),
                         "--bars-dir", str(missing))  # fmt: skip
    assert str(refused.value) == f"--bars-dir {missing}: no such folder."


def test_check_schema_names_a_database_the_settings_do_not_define():
    with pytest.raises(CommandError) as refused:
        call_command("check_schema", "--database", "bogus")
    assert str(refused.value) == (
        "--database 'bogus': the settings define no such database (only default)."
    )


def test_a_run_the_task_queue_cannot_take_fails_and_says_so(
    scratch_databases, migrated_template, monkeypatch
):
    """run_workflow queues the run; with the broker down it exits with the reason, and the
    execution it made is failed with it, not left pending for a day."""
    name = scratch_databases.create(template=migrated_template)
    made = scratch_databases.run(name, "manage.py", "shell", "-c", (
        "from marketdata.services import code_create\n"
        "from workflows.services import strategy_create\n"
        "code = code_create(symbol='AAPL', conid=265598)\n"
        "strategy_create(name='Queued', type='two_indicator', param={}, codes=[code])\n"
    ))  # fmt: skip
    assert made.returncode == 0, made.stderr
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("CELERY_BROKER_URL", f"redis://127.0.0.1:{port}/0")

    result = scratch_databases.run(name, "manage.py", "run_workflow", "Queued")

    assert result.returncode != 0
    assert "CommandError: The task queue cannot be reached" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    with scratch_databases.connect(name) as conn:
        [(status, error)] = conn.execute(
            "SELECT status, error_message FROM workflow_execution"
        ).fetchall()
    assert status == "failed" and error.startswith("The task queue cannot be reached")


# --- manage.py ibgateway, as a process ------------------------------------------------------
def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def manage_ibgateway(*arguments):
    return subprocess.Popen(
        [sys.executable, "manage.py", "ibgateway", *arguments],
        cwd=BASE_DIR,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_command_listens_and_serves_a_client():
    port = free_port()
    process = manage_ibgateway("--port", str(port), "--seed", "3", "--date", "2024-06-14")
    try:
        line = process.stdout.readline()
        assert line.strip() == f"Loopback IB Gateway (paper) listening on 127.0.0.1:{port}"
        client = connect(type("Address", (), {"port": port}))
        assert client.managedAccounts() == ["DU0000001"]
        assert stock(client, "MSFT").conId == 272093
        # --date pins the market: it stands after that day's close, and history ends there
        assert abs(client.reqCurrentTime() - FRIDAY_EVENING) < timedelta(minutes=1)
        bars = client.reqHistoricalData(stock(client, "MSFT"), "", "1 W", "1 day", "TRADES", True)
        assert bars[-1].date == date(2024, 6, 14)
        client.disconnect()
    finally:
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert "Loopback IB Gateway stopped." in stdout
    assert "Traceback" not in stderr


def test_the_command_names_a_port_in_use_without_a_traceback():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = manage_ibgateway("--port", str(port))
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 1
    assert f"CommandError: Cannot listen on 127.0.0.1:{port}" in stderr
    assert "Address already in use" in stderr
    assert "Traceback" not in stderr
    assert "listening" not in stdout


# --- manage.py ibgateway_price: moving a running gateway's price from outside ---------------
def test_ibgateway_price_moves_a_running_gateways_price_and_fills_its_orders():
    port = free_port()
    process = manage_ibgateway("--port", str(port), "--date", "2024-06-14")
    try:
        assert "listening" in process.stdout.readline()
        client = connect(type("Address", (), {"port": port}))
        [contract] = client.qualifyContracts(ibapi.Stock("AAPL", "SMART", "USD"))
        assert set_price(port=port, symbol="AAPL", price="200") == D(200)
        stop = client.placeOrder(contract, ibapi.StopOrder("BUY", 3, 201))
        assert status(client, stop, "PreSubmitted")
        command = subprocess.run(
            [sys.executable, "manage.py", "ibgateway_price", "aapl", "201.5", "--port", str(port)],
            cwd=BASE_DIR, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert command.returncode == 0, command.stderr
        assert command.stdout.strip() == f"AAPL now at 201.50 on the gateway at 127.0.0.1:{port}"
        assert status(client, stop, "Filled")
        assert fills_of(client, stop) == [("BOT", D(3), D("201.50"))]
        refused = subprocess.run(
            [sys.executable, "manage.py", "ibgateway_price", "AAPL", "-3", "--port", str(port)],
            cwd=BASE_DIR, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert refused.returncode == 1
        assert "a price must be a positive number" in refused.stderr
        assert "Traceback" not in refused.stderr
        with pytest.raises(ControlError, match="error 200"):
            set_price(port=port, symbol="NOT A SYMBOL", price="10")
        client.disconnect()
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=10)


def test_ibgateway_price_names_a_gateway_that_is_not_there():
    port = free_port()
    command = subprocess.run(
        [sys.executable, "manage.py", "ibgateway_price", "AAPL", "10", "--port", str(port)],
        cwd=BASE_DIR, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert command.returncode == 1
    assert f"cannot reach a loopback gateway at 127.0.0.1:{port}" in command.stderr
    assert "Traceback" not in command.stderr
