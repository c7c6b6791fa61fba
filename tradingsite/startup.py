"""Refuse to run the site on a database that is behind its migrations or off the specification.

Seed 000: "migration failures SHALL prevent application startup". A web process or a worker
started on such a database would fail later, at the first request or task that touches a
missing table or column, with an error far from its cause; refusing at once says what to run.
The web process (wsgi/asgi), ``runserver`` and the Celery worker call ``require_ready_database``;
``manage.py check`` reports the same through tradingsite/checks.py. The web process also
refuses to start without a SECRET_KEY (``require_secret_key``).
"""

import sqlalchemy.exc
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections
from django.db import Error as DjangoDatabaseError
from django.db.migrations.executor import MigrationExecutor

from tradingsite.schema.compare import SEED_TABLES, schema_compare

# What an unreachable or unreadable database raises, through Django or through SQLAlchemy.
DATABASE_ERRORS = (DjangoDatabaseError, sqlalchemy.exc.SQLAlchemyError)


class DatabaseNotReady(ImproperlyConfigured):
    """The database must be migrated or repaired before the site may start."""


def pending_migrations_problem(using=DEFAULT_DB_ALIAS):
    """What to run when migrations are not applied, or None when all are."""
    connection = connections[using]
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if not plan:
        return None
    count = "1 migration is" if len(plan) == 1 else f"{len(plan)} migrations are"
    initial_pending = any(migration.initial for migration, _ in plan)
    if initial_pending and SEED_TABLES & set(connection.introspection.table_names()):
        # Plain migrate would stop at "relation already exists".
        return (
            f"{count} not applied, and the seed tables exist already (a database the seed "
            "system created): back it up, then run `python manage.py migrate --fake-initial` "
            "(see tradingsite/schema/ADOPTING.md)"
        )
    return f"{count} not applied: run `python manage.py migrate`"


def schema_problem(using=DEFAULT_DB_ALIAS):
    """The schema check's report as one message, or None when the schema matches."""
    report = schema_compare(using)
    if report.ok:
        return None
    lines = "\n".join(f"  {problem}" for problem in report.problems)
    return (
        f"{report.summary}\n{lines}\n"
        "`python manage.py check_schema` repeats this report; tradingsite/schema/ADOPTING.md "
        "says how a database the seed system created is adopted."
    )


def readiness_problem(using=DEFAULT_DB_ALIAS):
    """Why the site must not start on this database, or None when it may."""
    try:
        return pending_migrations_problem(using) or schema_problem(using)
    except DATABASE_ERRORS as exc:
        return f"cannot read the database schema: {exc}".strip()


def require_ready_database(using=DEFAULT_DB_ALIAS):
    problem = readiness_problem(using)
    if problem:
        raise DatabaseNotReady(problem)


SECRET_KEY_MISSING = (
    "SECRET_KEY must be set when DEBUG is off: set the SECRET_KEY environment variable (a long "
    "random string), or DEBUG=true for local development."
)


def secret_key_problem():
    """Why nothing could be signed (logins, sessions, CSRF), or None."""
    try:
        settings.SECRET_KEY  # noqa: B018 - Django refuses an empty key when it is read
    except ImproperlyConfigured:
        return SECRET_KEY_MISSING
    return None


def require_secret_key():
    problem = secret_key_problem()
    if problem:
        raise ImproperlyConfigured(problem)
