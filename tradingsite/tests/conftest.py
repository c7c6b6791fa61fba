"""Scratch PostgreSQL databases for the tests that run ``manage.py``, migrations, a server or a
worker as a real process on a database of their own, so the shared test database is untouched.

They live on the test database's server, are named with this process id (parallel runs never
meet) and are dropped at the end of the session.
"""

import itertools
import os
import subprocess
import sys
from urllib.parse import quote

import psycopg
import pytest
from django.conf import settings
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable

from tradingsite.schema.reference import metadata


def start_with_database(database_url, *command):
    """A real process of the site (``command``: the arguments after the Python interpreter),
    configured as a user would, with its own database. Started, not waited for, so that
    independent processes overlap."""
    env = {
        **os.environ,
        "TESTING": "true",
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "tradingsite.settings",
    }
    return subprocess.Popen(
        [sys.executable, *command],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process, *, timeout=120):
    """Wait for ``process``; one still running after ``timeout`` seconds is killed."""
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


class ScratchDatabases:
    def __init__(self):
        params = settings.DATABASES["default"]
        self.server = {
            "host": params["HOST"] or "127.0.0.1",
            "port": params["PORT"] or 5432,
            "user": params["USER"],
            "password": params["PASSWORD"] or None,
        }
        self.prefix = f"ts_schema_{os.getpid()}_"
        self.counter = itertools.count()
        self.names = []

    def connect(self, name="postgres"):
        return psycopg.connect(dbname=name, autocommit=True, **self.server)

    def create(self, *, template=None):
        """A new database, empty or a copy of ``template`` (which must have no session open)."""
        name = f"{self.prefix}{next(self.counter)}"
        copy = f" TEMPLATE {template}" if template else ""
        with self.connect() as conn:
            conn.execute(f"CREATE DATABASE {name}{copy}")
        self.names.append(name)
        return name

    def create_as_seed_system(self):
        """A database as the seed system's Alembic migrations leave it: the seed tables only,
        from DDL compiled from the reference, with no CHECK constraint and no Django table."""
        name = self.create()
        dialect = postgresql.dialect()
        with self.connect(name) as conn:
            for table in metadata.sorted_tables:
                conn.execute(str(CreateTable(table).compile(dialect=dialect)))
                for index in table.indexes:
                    conn.execute(str(CreateIndex(index).compile(dialect=dialect)))
        return name

    def drop_all(self):
        with self.connect() as conn:
            for name in self.names:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def url(self, name):
        server = self.server
        password = f":{quote(server['password'])}" if server["password"] else ""
        return (
            f"postgres://{quote(server['user'])}{password}@{server['host']}:{server['port']}/{name}"
        )

    def start(self, name, *command):
        return start_with_database(self.url(name), *command)

    def run(self, name, *command, timeout=120):
        return finish(self.start(name, *command), timeout=timeout)

    finish = staticmethod(finish)


@pytest.fixture(scope="session")
def scratch_databases():
    databases = ScratchDatabases()
    yield databases
    databases.drop_all()


class SiteProcesses:
    """Processes of the site on a database given by its URL (one that is no scratch database)."""

    start = staticmethod(start_with_database)
    finish = staticmethod(finish)

    def run(self, database_url, *command, timeout=120):
        return finish(start_with_database(database_url, *command), timeout=timeout)


@pytest.fixture
def site_processes():
    return SiteProcesses()


@pytest.fixture(scope="session")
def first_migrate(scratch_databases):
    """``manage.py migrate`` on a new database, as ``make run`` does first: (the database, what
    the command gave)."""
    name = scratch_databases.create()
    return name, scratch_databases.run(name, "manage.py", "migrate", "--noinput")


@pytest.fixture(scope="session")
def migrated_template(first_migrate):
    """A database migrated by ``manage.py migrate``, to copy with CREATE DATABASE ... TEMPLATE."""
    name, result = first_migrate
    assert result.returncode == 0, result.stderr
    return name


@pytest.fixture(scope="session")
def unmigrated_database(scratch_databases):
    """An empty database: every migration is pending."""
    return scratch_databases.create()
