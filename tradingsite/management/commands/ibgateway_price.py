"""``python manage.py ibgateway_price AAPL 201.50 --port 4002``: move a running loopback
gateway's simulated price, so that a demo or a test walks it through a stop or a target."""

from django.core.management.base import BaseCommand, CommandError

from ibgateway.control import ControlError, set_price


class Command(BaseCommand):
    help = (
        "Set a symbol's simulated price on a running loopback IB Gateway; its resting orders "
        "(limits, stops, trailing stops, brackets) react at once."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("symbol", help="The stock's symbol, e.g. AAPL.")
        parser.add_argument("price", help="The new price, e.g. 201.50 (rounded to the cent).")
        parser.add_argument("--host", default="127.0.0.1", help="The gateway's address.")
        parser.add_argument("--port", type=int, default=4002, help="The gateway's port.")

    def handle(self, *args, symbol, price, host, port, **options):
        if not 0 < port <= 65535:
            raise CommandError(f"--port {port}: a port is 1 to 65535.")
        try:
            now = set_price(host=host, port=port, symbol=symbol, price=price)
        except ControlError as exc:
            raise CommandError(f"{symbol} {price}: {exc}.") from None
        self.stdout.write(f"{symbol.upper()} now at {now} on the gateway at {host}:{port}")
