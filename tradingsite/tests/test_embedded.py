"""`make run`'s embedded default: SQLite and no Redis. The demo's first run fetches its bars
from the loopback gateway, keeps them in the bar store and decides there, as it does on
PostgreSQL (the rest of the suite's database)."""

import os
import subprocess
import sys

import pytest

RUN_THE_DEMO = """
import django
django.setup()
from strategies.models import Strategy
from workflows.services import execution_prepare, execution_run
strategy = Strategy.objects.get()
execution = execution_run(execution_id=execution_prepare(strategy=strategy).pk)
from orders.models import Order, Position
print(execution.status, execution.failed_codes, execution.error_message or "")
print("filled", Order.objects.filter(status="filled").count(), "held",
      Position.objects.exclude(quantity=0).count())
"""


@pytest.mark.parametrize("gateway", [{"bars": {"AAPL": "up"}}], indirect=True)
def test_the_demo_runs_on_the_embedded_sqlite_database(gateway, settings, tmp_path):
    env = {
        key: value for key, value in os.environ.items()
        if key not in ("TESTING", "DEBUG", "REDIS_URL", "DATABASE_URL", "CACHE_URL")
    }  # fmt: skip
    env.update(
        DEBUG="true",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        IBKR_HOST="127.0.0.1",
        IBKR_PORT=str(settings.IBKR_PORT),
        IBKR_PACING_CLOCK="simulated",
        MEDIA_ROOT=str(tmp_path / "media"),
    )

    def run(*args):
        done = subprocess.run([sys.executable, *args], cwd=settings.BASE_DIR, env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    run("manage.py", "migrate", "--noinput")
    run("manage.py", "load_demo")
    *_, first, booked = run("-c", RUN_THE_DEMO).strip().splitlines()
    assert first.split()[:2] == ["completed", "{}"], first
    # AAPL's bars rise: the demo bought it, IB filled the entry and the ledger booked it.
    assert booked == "filled 1 held 1", booked
    # The second run reads what the first stored: the bar store's gaps and holes on SQLite.
    *_, second, _ = run("-c", RUN_THE_DEMO).strip().splitlines()
    assert second.split()[:2] == ["completed", "{}"], second
