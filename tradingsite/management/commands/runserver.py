from django.contrib.staticfiles.management.commands.runserver import (
    Command as StaticfilesRunserverCommand,
)
from django.core.management.base import CommandError

from tradingsite.startup import DatabaseNotReady, require_ready_database


class Command(StaticfilesRunserverCommand):
    """runserver (with static files) that refuses a database that is not ready.

    The check runs in ``handle()``, before the autoreloader starts: a refusal inside the
    reloaded child would leave the reloader waiting for a file to change instead of exiting.
    """

    def handle(self, *args, **options):
        try:
            require_ready_database()
        except DatabaseNotReady as exc:
            raise CommandError(str(exc)) from exc
        super().handle(*args, **options)
