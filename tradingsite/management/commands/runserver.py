from django.contrib.staticfiles.management.commands.runserver import (
    Command as StaticfilesRunserverCommand,
)
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError

from tradingsite.startup import require_ready_database, require_secret_key


class Command(StaticfilesRunserverCommand):
    """runserver (with static files) that refuses a database that is not ready, or no SECRET_KEY.

    The check runs in ``handle()``, before the autoreloader starts: a refusal inside the
    reloaded child would leave the reloader waiting for a file to change instead of exiting.
    """

    def handle(self, *args, **options):
        try:
            require_secret_key()
            require_ready_database()
        except ImproperlyConfigured as exc:  # DatabaseNotReady, or no SECRET_KEY
            raise CommandError(str(exc)) from exc
        super().handle(*args, **options)
