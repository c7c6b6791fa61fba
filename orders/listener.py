"""ib_listen: one long-running connection that hears everything IB says about the account.

It connects as IB's master client (``IBKR_MASTER_CLIENT_ID``), so every client's order
statuses, executions and commission reports reach it, whoever placed the order (the web
process, a worker, a command), and applies them at once through the services
(``OrderEventListener``: idempotent by execId). On every (re)connect it first catches up with
what it missed (``orders_reconcile``: IB's executions of the day, then the open and completed
orders). It also streams the price of every open position's contract and marks the position
to it (``position_mark_price``). Nothing else has to drive a connection for fills to land.
"""

import logging
import threading
import time

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection

from marketdata.services import contract_of
from tradingsite.broker import BrokerError, BrokerUnavailable, broker_connect

from .selectors import open_position_codes
from .services import orders_reconcile

logger = logging.getLogger(__name__)


class IBListener:
    """``run()`` until ``stop`` is set. ``poll_seconds`` bounds how long an event waits to be
    applied; the open positions' price subscriptions follow the book every
    ``positions_seconds``."""

    def __init__(self, *, poll_seconds=0.05, positions_seconds=1.0, retry_seconds=1.0,
                 stop=None, connect=None):  # fmt: skip
        self.poll_seconds = poll_seconds
        self.positions_seconds = positions_seconds
        self.retry_seconds = retry_seconds
        self.stop = stop or threading.Event()
        self._connect = connect or (
            lambda: broker_connect(client_id=settings.IBKR_MASTER_CLIENT_ID)
        )
        self.broker = None
        self.caught_up = threading.Event()  # set after each (re)connect's catch-up
        self._next_positions = 0.0

    def run(self):
        try:
            while not self.stop.is_set():
                try:
                    self.step()
                except BrokerUnavailable as exc:
                    logger.warning("ib_listen: %s Retrying in %gs.", exc, self.retry_seconds)
                    self._drop()
                    self.stop.wait(self.retry_seconds)
                except (BrokerError, DatabaseError) as exc:
                    # A refused request or a database that went away: say so, start afresh.
                    logger.error("ib_listen: %s", exc)
                    connection.close()
                    self._drop()
                    self.stop.wait(self.retry_seconds)
        finally:
            self._drop()
            connection.close()

    def step(self):
        close_old_connections()
        if self.broker is None or not self.broker.alive():
            self._drop()
            self.broker = self._connect()
            summary = orders_reconcile(broker=self.broker)
            logger.info("ib_listen: connected as client %s; caught up: %s",
                        self.broker.client_id, summary)  # fmt: skip
            self._next_positions = 0.0
            self.caught_up.set()
        if time.monotonic() >= self._next_positions:
            codes = open_position_codes()
            self.broker.stream_prices(contracts=[contract_of(code) for code in codes])
            self._next_positions = time.monotonic() + self.positions_seconds
        self.broker.wait(self.poll_seconds)

    def _drop(self):
        self.caught_up.clear()
        if self.broker is not None:
            try:
                self.broker.disconnect()
            except Exception:  # a dead socket may refuse even to close
                logger.debug("ib_listen: disconnect failed", exc_info=True)
            self.broker = None
