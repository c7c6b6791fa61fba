"""The embeddable gateway: a server on its own thread and event loop, with thread-safe controls.

ib_insync in synchronous mode runs its own event loop on the calling thread (and may nest it
with nest_asyncio); a server on that same loop would only make progress while the client
happens to be waiting. Giving the gateway its own thread and loop lets both run independently,
so neither ``util.patchAsyncio()`` nor any change to ib_insync is needed.
"""

import asyncio
import concurrent.futures
import logging
import signal
import threading
import time
from decimal import Decimal

from .book import Book, Execution, Order, PositionView
from .clock import make_clock
from .contracts import ContractRegistry
from .market import Market
from .server import GatewayServer

logger = logging.getLogger("ibgateway")

DEFAULT_ACCOUNT = "DU0000001"
DEFAULT_CASH = Decimal("1000000")


class LoopbackGateway:
    """A paper IB Gateway on loopback that the unmodified ib_insync client can use.

    Orders, executions and positions live as long as this object (across client
    connections, not across restarts). ``now`` sets the simulated clock: a datetime fixes it,
    a date pins the market to that day after the close (``clock.PinnedClock``), a callable
    supplies it; by default it is the wall clock.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        seed: int = 0,
        bars_dir=None,
        max_fill_size: int | Decimal | None = None,
        tick_seconds: float | None = None,
        master_client_id: int | None = None,
        account: str = DEFAULT_ACCOUNT,
        cash: Decimal | int | str = DEFAULT_CASH,
        now=None,
    ):
        self.host = host
        self.market = Market(seed=seed, bars_dir=bars_dir, clock=make_clock(now))
        self.contracts = ContractRegistry(
            extra_symbols=self.market.csv_symbols(),
            listed=lambda symbol: self.market.csv_path(symbol) is not None,
        )
        self.book = Book(
            market=self.market,
            calendar=self.market.calendar,
            account=account,
            cash=Decimal(str(cash)),
            max_fill_size=max_fill_size,
        )
        self.server = GatewayServer(
            market=self.market,
            book=self.book,
            contracts=self.contracts,
            host=host,
            port=port,
            tick_seconds=tick_seconds,
            master_client_id=master_client_id,
        )
        self.market.dispatch = self._call
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._loop_thread_id: int | None = None

    @property
    def history_requests(self) -> list[tuple[str, str, str, str]]:
        """Every reqHistoricalData so far: (symbol, endDateTime, duration, bar size)."""
        return self.server.history_requests

    def refuse_history(
        self, count: int = 1, *, after: int = 0, code: int = 162, message: str = ""
    ) -> None:
        """Answer ``count`` history requests, once ``after`` more have been answered, with
        IB's error ``code`` (by default a pacing violation, as IB answers a client that broke
        its rules)."""
        message = message or (
            "Historical Market Data Service error message:API historical data query "
            "cancelled: pacing violation"
        )
        self.server.history_refusals.extend([None] * after + [(code, message)] * count)

    # --- running --------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self.server.port

    @property
    def account(self) -> str:
        return self.book.account

    @property
    def running(self) -> bool:
        return self._loop is not None and self._loop.is_running()

    def start(self) -> int:
        """Serve on a background thread; returns the bound port once it accepts connections."""
        if self._thread is not None:
            raise RuntimeError("the gateway is already running")
        started = concurrent.futures.Future()

        def run():
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            self._loop_thread_id = threading.get_ident()
            try:
                port = loop.run_until_complete(self.server.start())
            except BaseException as exc:
                started.set_exception(exc)
                loop.close()
                self._loop = None
                return
            started.set_result(port)
            try:
                loop.run_forever()
            finally:
                self._shutdown(loop)

        self._thread = threading.Thread(target=run, name=f"ibgateway-{self.host}", daemon=True)
        self._thread.start()
        try:
            return started.result(timeout=10)
        except BaseException:
            self._thread.join(timeout=1)
            self._thread = None
            raise

    def stop(self) -> None:
        """Close every connection and the listening socket; the book is kept (not restarted)."""
        loop, thread = self._loop, self._thread
        if loop is None:
            return
        if thread is not None and threading.get_ident() != self._loop_thread_id:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            self._thread = None
        else:
            loop.stop()

    def _shutdown(self, loop: asyncio.AbstractEventLoop) -> None:
        started = self.server.started
        try:
            loop.run_until_complete(self.server.close())
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
            self._loop = None
            self._loop_thread_id = None
            if started:
                logger.info("loopback IB gateway on %s:%s stopped", self.host, self.port)

    def serve_forever(self, ready=None) -> None:
        """Serve on the calling thread until SIGINT/SIGTERM (the management command).

        ``ready(port)`` is called once the socket accepts connections.
        """
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        self._loop_thread_id = threading.get_ident()
        try:
            port = loop.run_until_complete(self.server.start())
            for signum in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(signum, loop.stop)
                except (NotImplementedError, RuntimeError, ValueError):
                    pass  # not the main thread, or a platform without signal handlers
            if ready is not None:
                ready(port)
            loop.run_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self._shutdown(loop)

    def __enter__(self) -> "LoopbackGateway":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # --- thread-safe access ---------------------------------------------------------------
    def _call(self, fn, *args):
        """Run ``fn`` on the gateway's loop and return its result (directly when not running
        or when already on that loop)."""
        loop = self._loop
        if loop is None or not loop.is_running() or threading.get_ident() == self._loop_thread_id:
            return fn(*args)
        done = concurrent.futures.Future()

        def run():
            try:
                done.set_result(fn(*args))
            except BaseException as exc:
                done.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return done.result(timeout=30)

    def pause(self, seconds: float) -> None:
        """Stop answering for ``seconds``, as a hung gateway does: its connections stay open,
        and what clients send meanwhile is read and answered afterwards."""
        loop = self._loop
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(time.sleep, seconds)

    def set_price(self, symbol: str, price) -> Decimal:
        """Move the simulated price; matching orders fill before this returns."""
        return self.market.set_price(symbol, price)

    def price(self, symbol: str) -> Decimal:
        return self._call(self.market.price, symbol)

    def tick(self) -> None:
        """One background-ticker step for every symbol with a live price."""
        self._call(self.market.tick)

    def positions(self) -> list[PositionView]:
        return self._call(lambda: [p for p in self.book.positions() if p.quantity != 0])

    def executions(self) -> list[Execution]:
        return self._call(lambda: list(self.book.executions))

    def list_symbol(self, symbol: str):
        """Make ``symbol`` a security the gateway knows from now on (its universe is its table
        and its bars files): for a test's made-up symbol whose bars it does not need."""
        return self.contracts.add_listing(symbol)

    def orders(self) -> list[Order]:
        return self._call(lambda: list(self.book.orders.values()))

    def account_values(self) -> dict[str, Decimal]:
        return self._call(self.book.account_values)


def serve(
    host: str = "127.0.0.1",
    port: int = 4002,
    *,
    ready=None,
    **options,
) -> None:
    """Blocking entry point: run a gateway on this thread until interrupted."""
    LoopbackGateway(host=host, port=port, **options).serve_forever(ready=ready)
