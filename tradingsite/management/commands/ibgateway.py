"""``python manage.py ibgateway``: the loopback IB Gateway for demos and paper trading.

It needs no database and no IB account; the product connects to it exactly as to IB Gateway
(IBKR_HOST/IBKR_PORT). Prices are simulated; orders, fills and positions last until it stops.
"""

import logging
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ibgateway import LoopbackGateway
from ibgateway.clock import parse_market_date


class Command(BaseCommand):
    help = (
        "Run the loopback IB Gateway (a paper account on a simulated market) until "
        "interrupted. Point IBKR_HOST/IBKR_PORT at it."
    )
    # A gateway needs neither the database nor the system checks that look at it.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on.")
        parser.add_argument("--port", type=int, default=4002, help="Port (IB Gateway paper: 4002).")
        parser.add_argument(
            "--bars-dir",
            default=None,
            help="Directory of <SYMBOL>.csv files (date,open,high,low,close,volume) that "
            "replace the simulated history of those symbols.",
        )
        parser.add_argument("--seed", type=int, default=0, help="Seed of the simulated prices.")
        parser.add_argument(
            "--date",
            default=None,
            help="Pin the simulated market to this day (YYYY-MM-DD): it stands at 17:00 New "
            "York that day, after the close, and its clock runs on from there. Default: the "
            "real clock (today's market).",
        )
        parser.add_argument(
            "--tick-seconds",
            type=float,
            default=None,
            help="Move every traded symbol's price by a small random step this often (off by "
            "default; prices then move only when something sets them).",
        )
        parser.add_argument(
            "--master-client-id",
            type=int,
            default=None,
            help="IB Gateway's Master API client ID: the client with this id hears every "
            "client's orders, fills and commissions (the site's ib_listen).",
        )
        parser.add_argument(
            "--max-fill-size",
            type=int,
            default=None,
            help="Fill resting orders at most this many shares per price tick (partial fills).",
        )

    def handle(
        self,
        *args,
        host,
        port,
        bars_dir,
        seed,
        date,
        tick_seconds,
        max_fill_size,
        master_client_id,
        **options,
    ):
        if not 0 <= port <= 65535:
            raise CommandError(f"--port {port}: a port is 0 to 65535 (0 picks a free one).")
        if bars_dir is not None and not Path(bars_dir).is_dir():
            raise CommandError(f"--bars-dir {bars_dir}: no such folder.")
        if max_fill_size is not None and max_fill_size <= 0:
            raise CommandError("--max-fill-size must be a positive number of shares.")
        if tick_seconds is not None and tick_seconds <= 0:
            raise CommandError("--tick-seconds must be positive.")
        try:
            market_date = parse_market_date(date) if date is not None else None
        except ValueError as exc:
            raise CommandError(f"--date: {exc}.") from None
        if int(options.get("verbosity", 1)) >= 2:
            logging.getLogger("ibgateway").setLevel(logging.DEBUG)
        gateway = LoopbackGateway(
            host=host,
            port=port,
            seed=seed,
            bars_dir=bars_dir,
            max_fill_size=max_fill_size,
            tick_seconds=tick_seconds,
            now=market_date,
            master_client_id=master_client_id,
        )

        def ready(bound_port):
            self.stdout.write(f"Loopback IB Gateway (paper) listening on {host}:{bound_port}")
            self.stdout.flush()

        try:
            gateway.serve_forever(ready=ready)
        except OSError as exc:
            raise CommandError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self.stdout.write("Loopback IB Gateway stopped.")
