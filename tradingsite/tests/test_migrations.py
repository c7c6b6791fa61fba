"""Migrations and ``manage.py check_schema`` as a user runs them, each on a database of its own:
the round trip to zero and back, drift reported line by line, and the adoption of a database the
seed system's Alembic migrations created."""

import json
import shutil
import sqlite3
from datetime import date

import pytest

from tradingsite.schema.reference import metadata

OUR_APPS = ["orders", "strategies", "workflows", "marketdata"]
SCHEMA_OK = "schema OK: 15 tables match the seed specification (PostgreSQL)"


def check_schema(scratch_databases, name):
    return scratch_databases.run(name, "manage.py", "check_schema")


def table_names(scratch_databases, name):
    with scratch_databases.connect(name) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        return {table for (table,) in rows}


@pytest.fixture
def migrated_database(scratch_databases, migrated_template):
    return scratch_databases.create(template=migrated_template)


def test_every_app_migrates_to_zero_and_back_to_a_clean_schema(
    scratch_databases, migrated_database
):
    to_zero = "; ".join(f"call_command('migrate', '{app}', 'zero')" for app in OUR_APPS)
    result = scratch_databases.run(
        migrated_database,
        "-c",
        f"import django; django.setup(); from django.core.management import call_command; "
        f"{to_zero}",
    )
    assert result.returncode == 0, result.stderr
    assert not table_names(scratch_databases, migrated_database) & (
        set(metadata.tables) | {"order_executions"}
    )

    result = scratch_databases.run(migrated_database, "manage.py", "migrate", "--noinput")
    assert result.returncode == 0, result.stderr
    result = check_schema(scratch_databases, migrated_database)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == SCHEMA_OK


def test_trades_closed_before_trade_exits_get_one_exit_each(scratch_databases, migrated_database):
    back = scratch_databases.run(migrated_database, "manage.py", "migrate", "orders", "0004")
    assert back.returncode == 0, back.stderr
    with scratch_databases.connect(migrated_database) as conn:
        conn.execute(
            "INSERT INTO orders (id, ibkr_order_id, conid, side, quantity, price, order_type, tif,"
            " status, filled_quantity, created_at, updated_at) VALUES (1, 7, 265598, 'BUY', 4, 100,"
            " 'LMT', 'DAY', 'filled', 4, now(), now())"
        )
        conn.execute(
            "INSERT INTO trades (order_id, conid, entry_price, entry_quantity, entry_date,"
            " exit_price, exit_quantity, exit_date, realized_pnl, created_at, updated_at) VALUES"
            " (1, 265598, 100, 4, '2025-03-01', 110, 4, '2025-03-04T15:00Z', 40, now(), now()),"
            " (1, 265598, 100, 4, '2025-03-01', NULL, NULL, NULL, NULL, now(), now())"
        )  # fmt: skip

    forward = scratch_databases.run(migrated_database, "manage.py", "migrate", "--noinput")

    assert forward.returncode == 0, forward.stderr
    with scratch_databases.connect(migrated_database) as conn:
        rows = conn.execute(
            "SELECT quantity, price, realized_pnl, exited_at FROM trade_exits"
        ).fetchall()
    assert [(q, p, pnl, at.isoformat()) for q, p, pnl, at in rows] == [
        (4, 110, 40, "2025-03-04T15:00:00+00:00")
    ]


def test_check_schema_reports_a_dropped_seed_index(scratch_databases, migrated_database):
    with scratch_databases.connect(migrated_database) as conn:
        conn.execute("DROP INDEX ix_decision_created_at")

    checking = scratch_databases.start(migrated_database, "manage.py", "check")
    result = check_schema(scratch_databases, migrated_database)

    assert result.returncode != 0
    assert result.stdout.splitlines() == [
        "missing index on decision(created_at) (seed index ix_decision_created_at)"
    ]
    assert "1 problem against the seed specification" in result.stderr

    # manage.py check says the same, as an error: every migration is applied.
    result = scratch_databases.finish(checking)
    assert result.returncode != 0
    assert "(tradingsite.E001) missing index on decision(created_at)" in result.stderr


def test_check_schema_reports_each_kind_of_drift(scratch_databases, migrated_database):
    with scratch_databases.connect(migrated_database) as conn:
        for statement in [
            "ALTER TABLE decision DROP COLUMN analysis_text",
            "ALTER TABLE strategy ALTER COLUMN param TYPE json",
            "ALTER TABLE orders ALTER COLUMN price TYPE numeric(18, 2)",
            "ALTER TABLE orders ALTER COLUMN side DROP NOT NULL",
            "ALTER TABLE orders DROP CONSTRAINT ck_orders_tif",
            "ALTER TABLE workflow_execution DROP CONSTRAINT ck_workflow_execution_status",
            "ALTER TABLE workflow_execution ADD CONSTRAINT ck_status "
            "CHECK (status IN ('pending', 'running', 'completed'))",
            "ALTER TABLE code DROP CONSTRAINT code_conid_key",
            "DROP TABLE workflow_metrics",
            "ALTER TABLE ohlcv_bars DROP CONSTRAINT ohlcv_high_gte_low",
            "ALTER TABLE data_sync_log DROP COLUMN total_bars",
        ]:
            conn.execute(statement)
        # Django names foreign keys with a hash: drop trades.order_id's whatever its name.
        (fk_name,) = conn.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'trades'::regclass "
            "AND contype = 'f'"
        ).fetchone()
        conn.execute(f"ALTER TABLE trades DROP CONSTRAINT {fk_name}")

    result = check_schema(scratch_databases, migrated_database)

    assert result.returncode != 0
    assert sorted(result.stdout.splitlines()) == sorted(
        [
            "missing table workflow_metrics",
            "missing column data_sync_log.total_bars (INTEGER NOT NULL)",
            "missing CHECK constraint on ohlcv_bars: high >= low",
            "missing column decision.analysis_text (TEXT NOT NULL)",
            "strategy.param is JSON, not jsonb",
            "type of orders.price: NUMERIC(18, 2), expected NUMERIC(18, 6)",
            "orders.side is NULL, expected NOT NULL",
            "missing unique constraint on code(conid)",
            "missing foreign key trades(order_id) -> orders(id)",
            "missing CHECK constraint on orders.tif: allowed values DAY, GTC",
            "wrong CHECK constraint on workflow_execution.status: allows completed, pending, "
            "running, expected cancelled, completed, failed, pending, running",
        ]
    )


def test_check_schema_on_sqlite_compares_what_sqlite_has(site_processes, tmp_path):
    migrated, drifted = tmp_path / "site.sqlite3", tmp_path / "drifted.sqlite3"
    result = site_processes.run(f"sqlite:///{migrated}", "manage.py", "migrate", "--noinput")
    assert result.returncode == 0, result.stderr
    shutil.copy(migrated, drifted)
    with sqlite3.connect(drifted) as conn:
        conn.execute("DROP INDEX ix_orders_status")

    checking_drifted = site_processes.start(f"sqlite:///{drifted}", "manage.py", "check_schema")
    result = site_processes.run(f"sqlite:///{migrated}", "manage.py", "check_schema")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == (
        "schema OK: 15 tables match the seed specification "
        "(SQLite: column types and CHECK constraints not compared)"
    )

    result = site_processes.finish(checking_drifted)
    assert result.returncode != 0
    assert result.stdout.splitlines() == [
        "missing index on orders(status) (seed index ix_orders_status)"
    ]


# Each table's first row, so every id is 1.
SEED_ROWS = """
    INSERT INTO code (symbol, conid, exchange, created_at, updated_at)
        VALUES ('AAPL', 265598, 'SMART', now(), now());
    INSERT INTO strategy (name, type, param, created_at, updated_at)
        VALUES ('Daily trend', 'two_indicator', '{"period_1": "1 Y", "bar_1": "1 day"}',
                now(), now());
    INSERT INTO strategy_codes (strategy_id, code_id) VALUES (1, 1);
    INSERT INTO decision (code_id, strategy_id, type, current_price, target_price, stop_loss,
                          analysis_text, created_at)
        VALUES (1, 1, 'buy', 190.5, 210, 180, 'Uptrend on both timeframes', now());
    INSERT INTO orders (decision_id, ibkr_order_id, conid, side, quantity, price, order_type,
                        tif, status, created_at, updated_at)
        VALUES (1, 5001, 265598, 'BUY', 10, 190.5, 'LMT', 'DAY', 'submitted', now(), now());
"""

# Through the web application, which starts only on a database that is ready.
READ_THROUGH_THE_ORM = """
import json
from tradingsite.wsgi import application
from marketdata.models import Code
from orders.models import Order

order = Order.objects.select_related("decision__strategy", "decision__code", "instrument").get()
new_code = Code.objects.create(symbol="MSFT", conid=272093)
print(json.dumps({
    "order": [order.pk, order.side, str(order.quantity), order.status, str(order.filled_quantity)],
    "instrument": order.instrument.symbol,
    "decision": [order.decision.type, str(order.decision.current_price),
                 order.decision.analysis_text],
    "strategy": [order.decision.strategy.name, order.decision.strategy.param,
                 [code.symbol for code in order.decision.strategy.codes.all()]],
    "code": [order.decision.code.currency, order.decision.code.sec_type],
    "new_code_id": new_code.pk,
}))
"""


def test_a_seed_system_database_is_adopted_with_its_rows(scratch_databases):
    name = scratch_databases.create_as_seed_system()
    with scratch_databases.connect(name) as conn:
        conn.execute(SEED_ROWS)

    result = scratch_databases.run(name, "manage.py", "migrate", "--fake-initial", "--noinput")
    assert result.returncode == 0, result.stderr
    assert "Applying marketdata.0001_initial... FAKED" in result.stdout
    assert "Applying orders.0003_constraints_and_extras... OK" in result.stdout

    checking = scratch_databases.start(name, "manage.py", "check_schema")
    result = scratch_databases.run(name, "-c", READ_THROUGH_THE_ORM)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "order": [1, "BUY", "10.0000", "submitted", "0.0000"],
        "instrument": "AAPL",
        "decision": ["buy", "190.500000", "Uptrend on both timeframes"],
        "strategy": ["Daily trend", {"period_1": "1 Y", "bar_1": "1 day"}, ["AAPL"]],
        "code": ["USD", "STK"],
        "new_code_id": 2,
    }

    result = scratch_databases.finish(checking)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == SCHEMA_OK


def test_adoption_stops_at_a_row_the_new_checks_refuse(scratch_databases):
    name = scratch_databases.create_as_seed_system()
    with scratch_databases.connect(name) as conn:
        conn.execute(SEED_ROWS)
        conn.execute("UPDATE orders SET status = 'open'")

    result = scratch_databases.run(name, "manage.py", "migrate", "--fake-initial", "--noinput")

    assert result.returncode != 0
    assert 'check constraint "ck_orders_status" of relation "orders" is violated' in result.stderr
    with scratch_databases.connect(name) as conn:
        assert conn.execute("SELECT status FROM orders").fetchall() == [("open",)]


def test_trades_booked_before_they_kept_their_strategy_get_it_and_their_days(
    scratch_databases, migrated_database
):
    back = scratch_databases.run(migrated_database, "manage.py", "migrate", "orders", "0009")
    assert back.returncode == 0, back.stderr
    with scratch_databases.connect(migrated_database) as conn:
        conn.execute(
            "INSERT INTO code (id, symbol, conid, exchange, currency, sec_type, is_active, name,"
            " created_at, updated_at) VALUES (1, 'AAPL', 265598, 'SMART', 'USD', 'STK', true, '',"
            " now(), now())"
        )
        conn.execute(
            "INSERT INTO strategy (id, name, type, param, active, schedule_crontab, created_at,"
            " updated_at) VALUES (5, 'Trend', 'two_indicator', '{}', true, '', now(), now())"
        )
        conn.execute(
            "INSERT INTO decision (id, code_id, strategy_id, type, current_price, analysis_text,"
            " status, llm_model, created_at) VALUES (9, 1, 5, 'buy', 100, '', 'success', '',"
            " now())"
        )
        for order_id, decision in ((1, "9"), (2, "NULL")):  # the strategy's, and a manual one
            conn.execute(
                "INSERT INTO orders (id, decision_id, ibkr_order_id, conid, side, quantity, price,"
                " order_type, tif, status, filled_quantity, created_at, updated_at) VALUES"
                f" ({order_id}, {decision}, {order_id}, 265598, 'BUY', 4, 100, 'LMT', 'DAY',"
                " 'filled', 4, now(), now())"
            )
            conn.execute(
                "INSERT INTO trades (id, order_id, conid, entry_price, entry_quantity, entry_date,"
                " exit_price, exit_quantity, exit_date, realized_pnl, fees, created_at,"
                f" updated_at) VALUES ({order_id}, {order_id}, 265598, 100, 4, '2025-03-03', 110,"
                " 4, '2025-03-04T15:00Z', 40, 0, now(), now())"
            )
            conn.execute(
                "INSERT INTO trade_exits (trade_id, quantity, price, realized_pnl, fees, exited_at,"
                f" created_at) VALUES ({order_id}, 4, 110, 40, 0, '2025-03-04T15:00Z', now())"
            )

    forward = scratch_databases.run(migrated_database, "manage.py", "migrate", "--noinput")

    assert forward.returncode == 0, forward.stderr
    with scratch_databases.connect(migrated_database) as conn:
        trades = conn.execute("SELECT id, strategy_id FROM trades ORDER BY id").fetchall()
        exits = conn.execute("SELECT trade_id, strategy_id FROM trade_exits ORDER BY 1").fetchall()
    assert trades == [(1, 5), (2, None)] and exits == [(1, 5), (2, None)]
    # The strategy's day is counted (orders 0012); the manual trade has none.
    with scratch_databases.connect(migrated_database) as conn:
        days = conn.execute(
            "SELECT strategy_id, conid, day, exits, exits_net, num_trades, num_winning_trades,"
            " gross_profit, first_entry FROM strategy_pnl_days"
        ).fetchall()
    assert [(*row[:3], row[3], str(row[4]), *row[5:7], str(row[7]), row[8].isoformat())
            for row in days] == [
        (5, 265598, date(2025, 3, 4), 1, "40.000000", 1, 1, "40.000000",
         "2025-03-03T00:00:00+00:00"),
    ]  # fmt: skip
