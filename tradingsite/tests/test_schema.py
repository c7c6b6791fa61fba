"""The schema the migrations build, read back from the test database's catalog: the seeds'
tables, columns, indexes and keys, and CHECK constraints that refuse what the seeds do not allow.
"""

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from sqlalchemy.dialects import postgresql

from marketdata.models import DataSyncLog
from marketdata.tests.factories import CodeFactory, OhlcvBarFactory
from orders.tests.factories import OrderFactory
from strategies.models import Decision, StrategyCode
from strategies.tests.factories import StrategyFactory
from tradingsite.schema.reference import ALLOWED_VALUES, REFERENCES
from workflows.models import AgentConversation, WorkflowExecution
from workflows.tests.factories import WorkflowFactory

pytestmark = pytest.mark.django_db

# Seed 000, "Database Indexes", besides code.conid (unique), which has a test of its own.
SEED_INDEXES = [
    ("code", ["symbol"]),
    ("market_data", ["conid", "period", "bar"]),
    ("decision", ["code_id"]),
    ("decision", ["strategy_id"]),
    ("decision", ["created_at"]),
    ("orders", ["ibkr_order_id"]),
    ("orders", ["status"]),
    ("orders", ["created_at"]),
    ("trades", ["order_id"]),
    ("positions", ["conid"]),
    # Seed 004, "Indexes".
    ("ohlcv_bars", ["ticker_id", "timeframe", "timestamp"]),
    ("ohlcv_bars", ["timestamp"]),
]


# Each table's columns as the references specify them (``code`` is in both).
REFERENCE_COLUMNS = {}
for reference in REFERENCES:
    for reference_table in reference.sorted_tables:
        REFERENCE_COLUMNS.setdefault(reference_table.name, {}).update(
            {column.name: column for column in reference_table.columns}
        )
FOREIGN_KEYS = [
    fk
    for reference in REFERENCES
    for table in reference.sorted_tables
    for fk in table.foreign_key_constraints
]


def catalog_columns(table):
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT attname, format_type(atttypid, atttypmod), NOT attnotnull
            FROM pg_attribute
            WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped
            """,
            [table],
        )
        return {name: (type_, nullable) for name, type_, nullable in cursor.fetchall()}


def catalog_spelling(column):
    """The reference column's type as PostgreSQL's format_type() spells it."""
    compiled = column.type.compile(dialect=postgresql.dialect()).lower()
    return compiled.replace("varchar", "character varying").replace(", ", ",")


def constraints(table):
    with connection.cursor() as cursor:
        return connection.introspection.get_constraints(cursor, table)


@pytest.mark.parametrize("table", sorted(REFERENCE_COLUMNS))
def test_every_seed_column_has_the_specified_type_and_nullability(table):
    found = catalog_columns(table)

    expected = {
        column.name: (catalog_spelling(column), column.nullable)
        for column in REFERENCE_COLUMNS[table].values()
    }
    assert {name: found.get(name) for name in expected} == expected


@pytest.mark.parametrize(("table", "columns"), SEED_INDEXES)
def test_each_seed_index_exists(table, columns):
    # A UNIQUE constraint is backed by an index on its columns.
    indexed = [c["columns"] for c in constraints(table).values() if c["index"] or c["unique"]]

    assert columns in indexed


def test_two_codes_cannot_share_a_conid():
    CodeFactory(conid=265598)

    with pytest.raises(IntegrityError, match="unique"), transaction.atomic():
        CodeFactory(conid=265598)


def test_a_strategy_links_a_code_once():
    strategy, code = StrategyFactory(), CodeFactory()
    StrategyCode.objects.create(strategy=strategy, code=code)

    with pytest.raises(IntegrityError, match="unique"), transaction.atomic():
        StrategyCode.objects.create(strategy=strategy, code=code)


@pytest.mark.parametrize(
    "foreign_key",
    FOREIGN_KEYS,
    ids=lambda fk: f"{fk.table.name}.{fk.column_keys[0]}",
)
def test_each_seed_foreign_key_exists(foreign_key):
    (column,) = foreign_key.column_keys
    (element,) = foreign_key.elements

    keys = [
        (c["columns"], c["foreign_key"])
        for c in constraints(foreign_key.table.name).values()
        if c["foreign_key"]
    ]
    assert ([column], (foreign_key.referred_table.name, element.column.name)) in keys


@pytest.mark.parametrize("table", ["orders", "trades", "positions", "market_data"])
def test_conid_is_a_plain_column_without_a_foreign_key(table):
    keyed = [c["columns"] for c in constraints(table).values() if c["foreign_key"]]

    assert ["conid"] not in keyed


def decision_row():
    return Decision.objects.create(
        code=CodeFactory(), strategy=StrategyFactory(), type="buy", current_price=Decimal("100")
    )


def execution_row():
    return WorkflowExecution.objects.create(strategy=StrategyFactory())


def conversation_row():
    return AgentConversation.objects.create(
        workflow_execution=execution_row(),
        agent_name="analyst",
        message_type="request",
        message_content="Analyse AAPL",
    )


def bar_row():
    return OhlcvBarFactory()


def sync_log_row():
    return DataSyncLog.objects.create(ticker=CodeFactory(), timeframe="1Day", status="success")


ROW_MAKERS = {
    "ohlcv_bars": bar_row,
    "data_sync_log": sync_log_row,
    "decision": decision_row,
    "orders": OrderFactory,
    "workflow": WorkflowFactory,
    "workflow_execution": execution_row,
    "agent_conversations": conversation_row,
}


def set_column(table, column, value, pk):
    """An UPDATE straight to the database, past every check Django makes."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f'UPDATE "{table}" SET "{column}" = %s WHERE id = %s', [value, pk])


REFUSALS = [
    ("decision", "type", "maybe"),
    ("orders", "side", "HOLD"),
    ("orders", "side", "buy"),
    ("orders", "order_type", "MOC"),
    ("orders", "tif", "IOC"),
    ("orders", "status", "open"),
    ("workflow", "type", "scalping"),
    ("workflow_execution", "status", "paused"),
    ("agent_conversations", "message_type", "thought"),
    ("ohlcv_bars", "timeframe", "1 day"),
    ("ohlcv_bars", "source", "alpaca"),
    ("data_sync_log", "timeframe", "1D"),
    ("data_sync_log", "status", "running"),
]


@pytest.mark.parametrize(("table", "column", "bad_value"), REFUSALS)
def test_the_database_allows_exactly_the_seed_values(table, column, bad_value):
    pk = ROW_MAKERS[table]().pk
    for value in sorted(ALLOWED_VALUES[(table, column)]):
        set_column(table, column, value, pk)

    with pytest.raises(IntegrityError, match="violates check constraint"):
        set_column(table, column, bad_value, pk)


def test_every_enumerated_column_has_a_refusal_case():
    assert {(table, column) for table, column, _ in REFUSALS} == set(ALLOWED_VALUES)
