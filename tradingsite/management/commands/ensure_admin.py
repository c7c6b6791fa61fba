import secrets

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create the 'admin' superuser with a random password, printed once."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username, **options):
        User = get_user_model()
        try:
            # The user model's own rules: not empty, at most 150 characters, no spaces.
            username = User._meta.get_field(User.USERNAME_FIELD).clean(username, None)
        except ValidationError as refused:
            raise CommandError(f"--username: {' '.join(refused.messages)}") from None
        if User.objects.filter(username=username).exists():
            self.stdout.write(
                f"Admin user {username!r} exists (its password was printed when it was created; "
                f"`python manage.py changepassword {username}` sets a new one)."
            )
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        self.stdout.write(
            self.style.SUCCESS(f"Admin user created: {username} / {password}  (shown only once)")
        )
