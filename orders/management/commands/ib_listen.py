"""``python manage.py ib_listen``: apply every order status, fill, commission and price IB
reports, as they happen (see orders/listener.py). Run one per IB account, beside the web
process and the workers; it reconnects by itself when the gateway restarts."""

import signal

from django.conf import settings
from django.core.management.base import BaseCommand

from orders.listener import IBListener


class Command(BaseCommand):
    help = (
        "Hear every order, fill, commission and position price of the IB account and apply "
        "them at once (as IB's master client, IBKR_MASTER_CLIENT_ID). Runs until interrupted."
    )

    def handle(self, *args, **options):
        listener = IBListener()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: listener.stop.set())
        self.stdout.write(
            f"ib_listen: IB at {settings.IBKR_HOST or '127.0.0.1'}:{settings.IBKR_PORT} as "
            f"master client {settings.IBKR_MASTER_CLIENT_ID}"
        )
        self.stdout.flush()
        listener.run()
        self.stdout.write("ib_listen stopped.")
