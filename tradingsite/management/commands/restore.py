from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from tradingsite.backup import backup_restore, ledger_fingerprint
from tradingsite.exceptions import ApplicationError


class Command(BaseCommand):
    help = (
        "Replace the database's contents by a backup made by `manage.py backup`. Stop the web "
        "processes and workers first. Needs --confirm."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument(
            "--confirm", action="store_true", help="yes, replace every table of the database"
        )

    def handle(self, *args, file, confirm, **options):
        name = connection.settings_dict["NAME"]
        if not confirm:
            raise CommandError(
                f"restore replaces every table of the database {name} by the backup {file}: "
                "add --confirm to do it."
            )
        try:
            backup_restore(path=file)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Restored {name} from {file}")
        for table, (rows, digest) in ledger_fingerprint().items():
            self.stdout.write(f"  {table}: {rows} rows, sha256 {digest}")
