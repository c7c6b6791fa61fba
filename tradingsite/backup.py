"""Backups of the whole database and their restore (seed 003's backup and restore).

PostgreSQL: ``pg_dump`` in its custom format (compressed, restorable table by table) and
``pg_restore --clean --single-transaction``: the restore replaces every table it holds in one
transaction, so a failed restore leaves the database as it was. SQLite: the online backup API
(a consistent copy while the web process and the workers write), both ways.

``ledger_fingerprint`` (rows and a SHA-256 of ``orders``, ``trades`` and ``positions``, every
column, in id order) is printed by both commands, so a restore can be checked against the
backup it came from.
"""

import hashlib
import os
import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from django.db import connection, connections

from tradingsite.exceptions import ApplicationError

PG_MAGIC = b"PGDMP"
SQLITE_MAGIC = b"SQLite format 3\x00"
LEDGER = ("orders", "trades", "positions")


def _engine():
    vendor = connection.vendor
    if vendor not in ("postgresql", "sqlite"):
        raise ApplicationError(f"Backups are made of PostgreSQL or SQLite, not {vendor}.")
    return vendor


def _pg_environment():
    db = connection.settings_dict
    env = {**os.environ}
    for variable, key in (("PGHOST", "HOST"), ("PGPORT", "PORT"), ("PGUSER", "USER"),
                          ("PGPASSWORD", "PASSWORD"), ("PGDATABASE", "NAME")):  # fmt: skip
        if db.get(key):
            env[variable] = str(db[key])
    return env


def _tool(name):
    found = shutil.which(name)
    if not found:
        raise ApplicationError(
            f"{name} is not installed: it comes with PostgreSQL's client (Debian: "
            "apt-get install postgresql-client)."
        )
    return found


def _run(command, what):
    done = subprocess.run(command, env=_pg_environment(), capture_output=True, text=True)
    if done.returncode != 0:
        raise ApplicationError(f"{what} failed: {done.stderr.strip() or done.returncode}")


def backup_create(*, directory, now=None):
    """Write a backup of the database into ``directory`` (made if missing); return its path."""
    engine = _engine()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    name = connection.settings_dict["NAME"]
    if engine == "postgresql":
        target = directory / f"{Path(str(name)).name}-{stamp}.dump"
        _run([_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={target}"], "pg_dump")
        return target
    target = directory / f"{Path(str(name)).stem}-{stamp}.sqlite3"
    source = sqlite3.connect(str(name))
    copy = sqlite3.connect(str(target))
    try:
        with copy:
            source.backup(copy)
    finally:
        copy.close()
        source.close()
    return target


def _kind(path):
    with open(path, "rb") as file:
        head = file.read(16)
    if head.startswith(PG_MAGIC):
        return "postgresql"
    if head == SQLITE_MAGIC:
        return "sqlite"
    return None


def backup_restore(*, path):
    """Replace the database's contents by the backup at ``path`` (one of ``backup_create``'s,
    for the same kind of database)."""
    engine = _engine()
    path = Path(path)
    if not path.is_file():
        raise ApplicationError(f"No backup file at {path}.")
    kind = _kind(path)
    if kind is None:
        raise ApplicationError(
            f"{path} is not a backup: neither a pg_dump custom-format file nor an SQLite file."
        )
    if kind != engine:
        raise ApplicationError(
            f"{path} is a {kind} backup, and the database (DATABASE_URL) is {engine}."
        )
    connections.close_all()
    if engine == "postgresql":
        _run([_tool("pg_restore"), "--clean", "--if-exists", "--no-owner",
              "--single-transaction", f"--dbname={connection.settings_dict['NAME']}",
              str(path)], "pg_restore")  # fmt: skip
        return
    source = sqlite3.connect(str(path))
    target = sqlite3.connect(str(connection.settings_dict["NAME"]))
    try:
        with target:
            source.backup(target)
    finally:
        target.close()
        source.close()


def ledger_fingerprint():
    """{table: (rows, sha256)} of orders, trades and positions, every column in id order."""
    found = {}
    with connection.cursor() as cursor:
        for table in LEDGER:
            cursor.execute(f"SELECT * FROM {table} ORDER BY id")  # noqa: S608 - fixed names
            digest = hashlib.sha256()
            rows = 0
            for row in cursor.fetchall():
                digest.update(repr(tuple(_plain(v) for v in row)).encode())
                rows += 1
            found[table] = (rows, digest.hexdigest())
    return found


def _plain(value):
    """The same text for a value read from PostgreSQL or SQLite (dates as UTC ISO text)."""
    if isinstance(value, datetime):
        value = value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    return str(value) if value is not None else None
