from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections

from tradingsite.schema.compare import schema_compare
from tradingsite.startup import DATABASE_ERRORS


class Command(BaseCommand):
    help = (
        "Compare the database with the seed specification (tradingsite/schema/reference.py): "
        "one line per problem, then a summary. Exits non-zero when they differ."
    )
    # The check reports on the schema itself; the system checks would only repeat it.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args, database, **options):
        if database not in connections:
            raise CommandError(
                f"--database {database!r}: the settings define no such database "
                f"(only {', '.join(connections)})."
            )
        try:
            report = schema_compare(database)
        except DATABASE_ERRORS as exc:
            raise CommandError(f"cannot read the database schema: {exc}".strip()) from exc
        for problem in report.problems:
            self.stdout.write(problem)
        if not report.ok:
            raise CommandError(report.summary)
        self.stdout.write(self.style.SUCCESS(report.summary))
