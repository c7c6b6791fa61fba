from django.core.management.commands import migrate

from tradingsite.checks import applying_migrations


class Command(migrate.Command):
    """Django's migrate, whose system checks do not warn that migrations are not applied
    (tradingsite.W001): it is about to apply them. Every other warning and error stays."""

    def check(self, *args, **kwargs):
        with applying_migrations():
            return super().check(*args, **kwargs)
