from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from tradingsite.backup import backup_create, ledger_fingerprint
from tradingsite.exceptions import ApplicationError


class Command(BaseCommand):
    help = (
        "Back up the whole database into DIR (default var/backups): pg_dump's custom format "
        "for PostgreSQL, the online backup API for SQLite. Prints the file and the rows and "
        "checksums of orders, trades and positions."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", nargs="?", default=str(settings.VAR_DIR / "backups"))

    def handle(self, *args, directory, **options):
        try:
            path = backup_create(directory=directory)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Backed up to {path}")
        for table, (rows, digest) in ledger_fingerprint().items():
            self.stdout.write(f"  {table}: {rows} rows, sha256 {digest}")
