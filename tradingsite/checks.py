"""System checks: ``manage.py check`` tells what startup would refuse (tradingsite/startup.py).

Unapplied migrations are a Warning, not an Error: ``migrate`` runs the system checks before it
migrates, and an Error would stop the very command that fixes it. Schema problems are Errors
only once every migration is applied (a pending migration may be what repairs them). A database
that cannot be reached is a Warning: ``check`` must work on a machine without one.
``migrate``'s own checks leave out the warning about pending migrations, which it applies.
"""

from contextlib import contextmanager
from contextvars import ContextVar

from django.core.checks import Error, Tags, Warning, register
from django.db import DEFAULT_DB_ALIAS

from tradingsite.schema.compare import schema_compare
from tradingsite.startup import DATABASE_ERRORS, pending_migrations_problem, secret_key_problem

_migrating = ContextVar("migrating", default=False)


@contextmanager
def applying_migrations():
    """Checks run inside are migrate's: pending migrations are no news (no W001)."""
    token = _migrating.set(True)
    try:
        yield
    finally:
        _migrating.reset(token)


HINT = (
    "`python manage.py check_schema` lists every difference from the seed specification; "
    "tradingsite/schema/ADOPTING.md says how a database the seed system created is adopted."
)


@register(Tags.database)
def database_schema_check(app_configs=None, databases=None, **kwargs):
    messages = []
    for alias in databases or [DEFAULT_DB_ALIAS]:
        try:
            pending = pending_migrations_problem(alias)
            report = None if pending else schema_compare(alias)
        except DATABASE_ERRORS as exc:
            messages.append(
                Warning(
                    f"Cannot check the schema of database {alias!r}: {exc}".strip(),
                    id="tradingsite.W002",
                )
            )
            continue
        if pending:
            if not _migrating.get():
                messages.append(Warning(pending, id="tradingsite.W001"))
        else:
            messages.extend(
                Error(problem, hint=HINT, id="tradingsite.E001") for problem in report.problems
            )
    return messages


@register(Tags.security, deploy=True)
def secret_key_check(app_configs=None, **kwargs):
    problem = secret_key_problem()
    return [Error(problem, id="tradingsite.E002")] if problem else []
