"""Compare the live database with the seed specification (tradingsite/schema/reference.py).

Alembic's ``compare_metadata`` finds missing tables and columns and wrong types and nullability.
Indexes, unique constraints and foreign keys are compared here by what they cover, because
Alembic matches them by name and Django names them with hashes (and adds ``*_like`` indexes and
DEFERRABLE foreign keys) where the seed system's Alembic migrations chose other names. CHECK
constraints Alembic does not compare at all: they are read from ``pg_constraint``.

Only what the specification requires is reported: our own tables, columns, indexes and
constraints beside it are no problem.
"""

import logging
import re
from dataclasses import dataclass

import sqlalchemy as sa
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.pool import NullPool

from tradingsite.schema.reference import ALLOWED_VALUES, REFERENCES, REQUIRED_CHECKS

SEED_TABLES = frozenset(name for reference in REFERENCES for name in reference.tables)

# Alembic narrates its plugins and each difference it detects at INFO, from import on: it is
# imported only after this, where it is used, and the report says each difference once.
logging.getLogger("alembic").setLevel(logging.WARNING)

# Keys of Django's OPTIONS that are Django's own, not connection parameters for psycopg.
_DJANGO_ONLY_OPTIONS = frozenset({"assume_role", "isolation_level", "pool", "server_side_binding"})

_CHECKS_SQL = sa.text(
    """
    SELECT t.relname, a.attname, pg_get_constraintdef(c.oid)
    FROM pg_constraint c
    JOIN pg_class t ON t.oid = c.conrelid
    JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
    WHERE c.contype = 'c'
      AND cardinality(c.conkey) = 1
      AND t.relnamespace = current_schema()::regnamespace
      AND t.relname = ANY(:tables)
    """
)
_SQL_STRING = re.compile(r"'((?:[^']|'')*)'")
_CAST = re.compile(r"::[a-z][a-z ]*")
_WHOLE_NUMBER = re.compile(r"\b(\d+)\.0+\b")
_TABLE_CHECKS_SQL = sa.text(
    """
    SELECT t.relname, pg_get_constraintdef(c.oid)
    FROM pg_constraint c
    JOIN pg_class t ON t.oid = c.conrelid
    WHERE c.contype = 'c'
      AND t.relnamespace = current_schema()::regnamespace
      AND t.relname = ANY(:tables)
    """
)


@dataclass(frozen=True)
class SchemaReport:
    problems: list[str]
    summary: str

    @property
    def ok(self):
        return not self.problems


def schema_compare(using=DEFAULT_DB_ALIAS):
    """Compare database ``using`` with the seed specification.

    PostgreSQL, the production database, is compared in full. On SQLite (the embedded default)
    column types and CHECK constraints are not: SQLite has no NUMERIC precision, no jsonb and
    no timestamptz to compare, and keeps CHECKs only inside its CREATE TABLE text.
    """
    connection = connections[using]
    postgres = connection.vendor == "postgresql"
    engine = _engine(connection)
    try:
        with engine.connect() as conn:
            problems, missing = _table_and_column_problems(conn, compare_types=postgres)
            problems += _index_and_constraint_problems(sa.inspect(conn), missing)
            if postgres:
                problems += _check_problems(conn, missing)
        problems = list(dict.fromkeys(problems))  # a table both references name is said once
    finally:
        engine.dispose()

    scope = "PostgreSQL" if postgres else "SQLite: column types and CHECK constraints not compared"
    if problems:
        noun = "problem" if len(problems) == 1 else "problems"
        summary = (
            f"schema check failed: {len(problems)} {noun} against the seed specification ({scope})"
        )
    else:
        summary = f"schema OK: {len(SEED_TABLES)} tables match the seed specification ({scope})"
    return SchemaReport(problems=problems, summary=summary)


def _engine(connection):
    """A SQLAlchemy engine on the same database as Django's ``connection``."""
    params = connection.settings_dict
    if connection.vendor == "postgresql":
        url = sa.URL.create(
            "postgresql+psycopg",
            username=params["USER"] or None,
            password=params["PASSWORD"] or None,
            host=params["HOST"] or None,
            port=int(params["PORT"]) if params["PORT"] else None,
            database=params["NAME"],
        )
        options = params.get("OPTIONS", {})
        connect_args = {k: v for k, v in options.items() if k not in _DJANGO_ONLY_OPTIONS}
        return sa.create_engine(url, poolclass=NullPool, connect_args=connect_args)
    if connection.vendor == "sqlite":
        url = sa.URL.create("sqlite", database=str(params["NAME"]))
        return sa.create_engine(url, poolclass=NullPool)
    raise ImproperlyConfigured(
        f"The schema check supports PostgreSQL and SQLite, not {connection.vendor}."
    )


def _include_name(name, type_, parent_names):
    """Reflect only the seed tables: Django's own (auth_*, django_*, ...) are none of ours."""
    return type_ != "table" or name in SEED_TABLES


def _include_object(obj, name, type_, reflected, compare_to):
    """Leave out what only the database has (our extras) and what is compared by coverage."""
    if type_ in ("index", "unique_constraint", "foreign_key_constraint"):
        return False
    return not (reflected and compare_to is None)


def _table_and_column_problems(conn, *, compare_types):
    """Missing tables and columns, wrong types and nullability, as Alembic sees them."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    context = MigrationContext.configure(
        conn,
        opts={
            "compare_type": compare_types,
            "include_name": _include_name,
            "include_object": _include_object,
        },
    )
    problems, missing_tables = [], set()
    diffs = [diff for reference in REFERENCES for diff in compare_metadata(context, reference)]
    for diff in _flatten(diffs):
        kind = diff[0]
        if kind == "add_table":
            missing_tables.add(diff[1].name)
            problems.append(f"missing table {diff[1].name}")
        elif kind == "add_column":
            _, _, table, column = diff
            null = "" if column.nullable else " NOT NULL"
            problems.append(
                f"missing column {table}.{column.name} ({_type_name(column.type, conn)}{null})"
            )
        elif kind == "modify_type":
            _, _, table, column, _, found, expected = diff
            problems.append(_type_problem(f"{table}.{column}", found, expected, conn))
        elif kind == "modify_nullable":
            _, _, table, column, _, found_nullable, _ = diff
            found, expected = ("NULL", "NOT NULL") if found_nullable else ("NOT NULL", "NULL")
            problems.append(f"{table}.{column} is {found}, expected {expected}")
        # Other kinds (server defaults, comments) are nothing the seeds specify.
    return problems, missing_tables


def _flatten(diffs):
    """compare_metadata groups the modifications of one column into a list."""
    for diff in diffs:
        if isinstance(diff, list):
            yield from diff
        else:
            yield diff


def _type_name(type_, conn):
    return type_.compile(dialect=conn.dialect)


def _type_problem(column, found, expected, conn):
    if isinstance(expected, JSONB):
        return f"{column} is {_type_name(found, conn)}, not jsonb"
    return f"type of {column}: {_type_name(found, conn)}, expected {_type_name(expected, conn)}"


def _index_and_constraint_problems(inspector, missing_tables):
    """Seed indexes, unique constraints and foreign keys the database does not cover."""
    problems = []
    for table in (table for reference in REFERENCES for table in reference.sorted_tables):
        if table.name in missing_tables:
            continue
        indexes = [
            index
            # SQLite backs a column's UNIQUE with an "auto index", listed only on request.
            for index in inspector.get_indexes(table.name, include_auto_indexes=True)
            if not index["name"].endswith("_like")  # varchar_pattern_ops: for LIKE only
            and not _is_partial(index)
            and None not in index["column_names"]  # an expression index
        ]
        uniques = [u["column_names"] for u in inspector.get_unique_constraints(table.name)]
        covered = {tuple(columns) for columns in uniques}
        covered |= {tuple(index["column_names"]) for index in indexes}
        unique = {frozenset(columns) for columns in uniques}
        unique |= {frozenset(index["column_names"]) for index in indexes if index["unique"]}
        keys = {
            (tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]))
            for fk in inspector.get_foreign_keys(table.name)
        }

        for index in sorted(table.indexes, key=lambda index: index.name):
            columns = tuple(column.name for column in index.columns)
            if columns not in covered:
                problems.append(
                    f"missing index on {table.name}({', '.join(columns)}) (seed index {index.name})"
                )
        for constraint in table.constraints:
            if isinstance(constraint, sa.UniqueConstraint):
                columns = [column.name for column in constraint.columns]
                if frozenset(columns) not in unique:
                    problems.append(
                        f"missing unique constraint on {table.name}({', '.join(columns)})"
                    )
            elif isinstance(constraint, sa.ForeignKeyConstraint):
                key = (
                    tuple(column.name for column in constraint.columns),
                    constraint.referred_table.name,
                    tuple(element.column.name for element in constraint.elements),
                )
                if key not in keys:
                    problems.append(
                        f"missing foreign key {table.name}({', '.join(key[0])}) "
                        f"-> {key[1]}({', '.join(key[2])})"
                    )
    return problems


def _is_partial(index):
    """A partial index (WHERE ...) covers only some rows, so it enforces or speeds up less."""
    options = index.get("dialect_options", {})
    return any(options.get(key) is not None for key in ("postgresql_where", "sqlite_where"))


def _check_problems(conn, missing_tables):
    """Each enumerated column must have a CHECK allowing exactly the seed's values.

    Several CHECKs on one column all apply, so the values allowed are those every one of them
    names. A CHECK naming no string (``quantity > 0``) says nothing about an enumeration.
    """
    allowed = {}
    tables = sorted({table for table, _ in ALLOWED_VALUES})
    for table, column, definition in conn.execute(_CHECKS_SQL, {"tables": tables}):
        values = {value.replace("''", "'") for value in _SQL_STRING.findall(definition)}
        if values:
            key = (table, column)
            allowed[key] = allowed[key] & values if key in allowed else values

    problems = []
    present = {
        (table, column["name"])
        for table in tables
        if table not in missing_tables
        for column in sa.inspect(conn).get_columns(table)
    }
    for (table, column), expected in ALLOWED_VALUES.items():
        if (table, column) not in present:
            continue  # reported as a missing table or column
        found = allowed.get((table, column))
        if found is None:
            problems.append(
                f"missing CHECK constraint on {table}.{column}: allowed values "
                f"{', '.join(sorted(expected))}"
            )
        elif found != expected:
            problems.append(
                f"wrong CHECK constraint on {table}.{column}: allows "
                f"{', '.join(sorted(found))}, expected {', '.join(sorted(expected))}"
            )
    return problems + _rule_problems(conn, missing_tables)


def _condition(definition):
    """A CHECK's condition without PostgreSQL's parentheses and casts: ``CHECK ((high >=
    low))`` is ``high >= low``, ``CHECK ((open > (0.0)::double precision))`` is ``open > 0``."""
    condition = definition.removeprefix("CHECK").replace("(", "").replace(")", "")
    condition = _CAST.sub("", condition)
    return _WHOLE_NUMBER.sub(r"\1", condition).strip()


def _rule_problems(conn, missing_tables):
    """Each of seed 004's rules on a bar must be a CHECK of its own."""
    tables = sorted(set(REQUIRED_CHECKS) - missing_tables)
    found = {table: set() for table in tables}
    for table, definition in conn.execute(_TABLE_CHECKS_SQL, {"tables": tables}):
        found[table].add(_condition(definition))
    return [
        f"missing CHECK constraint on {table}: {rule}"
        for table in tables
        for rule in sorted(REQUIRED_CHECKS[table] - found[table])
    ]
