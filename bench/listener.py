"""How long a fill at the gateway takes to reach the database, through ib_listen.

    .venv/bin/python bench/listener.py [--orders 200]

A loopback IB gateway runs on a thread of this process; ``manage.py ib_listen`` runs as its
own process (as in production), as the gateway's master client. This process places market
orders through ``order_place`` (as the web process does, with its own client id) and then
only reads the database, polling every millisecond until the order row is ``filled``: it
never drives its own connection, so every fill that lands was applied by the listener. The
time is measured from ``order_place`` returning (the order is at IB; the gateway fills a
market order at once) to the row reading ``filled``. Database: ``tradingsite_bench_listener``
on PostgreSQL (BENCH_DATABASE_URL moves it). Goal (issue 14): within 1 s.
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault(
    "DATABASE_URL",
    os.environ.get(
        "BENCH_DATABASE_URL", "postgres://root@127.0.0.1:5432/tradingsite_bench_listener"
    ),
)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingsite.settings")
os.environ.setdefault("DEBUG", "true")
os.environ.pop("REDIS_URL", None)

import django  # noqa: E402

from bench.common import ensure_database  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200)
    args = parser.parse_args()

    ensure_database(os.environ["DATABASE_URL"])
    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    from ibgateway import LoopbackGateway

    # The site's modules once main() has set Django up (this script picks its database first).
    from marketdata.services import code_resolve
    from orders.models import Order, OrderExecution, Position, Trade, TradeExit
    from orders.services import order_place
    from tradingsite.broker import reset_broker

    master = 94
    gateway = LoopbackGateway(host="127.0.0.1", port=0, seed=3, master_client_id=master)
    port = gateway.start()
    settings.IBKR_HOST, settings.IBKR_PORT, settings.IBKR_CLIENT_ID = "127.0.0.1", port, 90
    reset_broker()
    TradeExit.objects.all().delete()
    Trade.objects.all().delete()
    OrderExecution.objects.all().delete()
    Order.objects.all().delete()
    Position.objects.all().delete()

    env = {**os.environ, "IBKR_HOST": "127.0.0.1", "IBKR_PORT": str(port),
           "IBKR_MASTER_CLIENT_ID": str(master), "PYTHONUNBUFFERED": "1"}  # fmt: skip
    listener = subprocess.Popen(
        [sys.executable, "manage.py", "ib_listen"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not any(s.client_id == master for s in gateway.server.sessions if s.ready):
            if time.monotonic() > deadline or listener.poll() is not None:
                sys.exit("ib_listen did not connect")
            time.sleep(0.05)
        codes = [code_resolve(symbol=s) for s in ("AAPL", "MSFT", "SPY", "QQQ")]
        seconds = []
        for n in range(args.orders):
            code = codes[n % len(codes)]
            order = order_place(code=code, side="BUY" if n % 2 == 0 else "SELL", quantity=1,
                                order_type="MKT", tif="DAY")  # fmt: skip
            placed = time.perf_counter()
            rows = Order.objects.filter(pk=order.pk, status="filled")
            while not rows.exists():
                if time.perf_counter() - placed > 30:
                    sys.exit(f"order {order.pk} was not filled in the database within 30 s")
                time.sleep(0.001)
            seconds.append(time.perf_counter() - placed)
    finally:
        listener.send_signal(signal.SIGTERM)
        listener.wait(20)
        gateway.stop()

    ms = sorted(s * 1000 for s in seconds)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    print(f"fills applied by ib_listen: {len(ms)} market orders")
    print(f"{'p50':>6} {'p90':>8} {'p99':>8} {'max':>8}   (ms, from order_place to 'filled')")
    print(f"{statistics.median(ms):6.1f} {ms[int(0.9 * (len(ms) - 1))]:8.1f} {p99:8.1f} "
          f"{ms[-1]:8.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
