"""What the simulator's tests share: a gateway on a fixed clock and the unmodified ib_insync
client talking to it over a real socket, as a user's own script or notebook would.

The simulator imports nothing from the site, and neither do its tests.
"""

import asyncio
import time
from datetime import UTC, datetime
from decimal import Decimal

import ib_insync as ibapi

from ibgateway import LoopbackGateway

FRIDAY_EVENING = datetime(2024, 6, 14, 21, 0, tzinfo=UTC)  # 17:00 New York, after the close
D = Decimal


def start_gateway(**options):
    gateway = LoopbackGateway(host="127.0.0.1", port=0, now=FRIDAY_EVENING, **options)
    gateway.start()
    return gateway


def connect(gateway, client_id=1):
    try:  # ib_insync needs an event loop set in the calling thread
        asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())
    ib = ibapi.IB()
    ib.connect("127.0.0.1", gateway.port, clientId=client_id, timeout=5)
    return ib


def until(ib, condition, timeout=5.0):
    """Let ib_insync's loop run until ``condition()`` holds; False on timeout."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        ib.sleep(0.02)
    return True


def stock(ib, symbol):
    [contract] = ib.qualifyContracts(ibapi.Stock(symbol, "SMART", "USD"))
    return contract


def daily_bars(ib, contract, duration="1 M"):
    bars = ib.reqHistoricalData(contract, "", duration, "1 day", "TRADES", True)
    return [(b.date, b.open, b.high, b.low, b.close, b.volume) for b in bars]


def money(value):
    return D(str(value)).quantize(D("0.0001"))


def fills_of(ib, trade):
    """``[(side, shares, price)]`` of a trade's fills, in Decimal."""
    return [
        (f.execution.side, D(str(f.execution.shares)), D(str(f.execution.price)))
        for f in trade.fills
    ]


def status(ib, trade, wanted, timeout=5.0):
    """Whether the trade reaches status ``wanted`` within ``timeout`` seconds."""
    return until(ib, lambda: trade.orderStatus.status == wanted, timeout)
