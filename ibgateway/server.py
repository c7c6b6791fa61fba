"""The asyncio server: one :class:`ClientSession` per API connection, one shared book.

Everything here runs on the gateway's own event loop; the book, the market's listeners and
all socket writes happen on that loop's thread, so none of them needs a lock.
"""

import asyncio
import collections
import contextlib
import logging
import os
import struct
from collections import Counter
from datetime import UTC, datetime

from . import messages as msg
from .book import (
    CENT,
    MARGIN_RATE,
    Book,
    BookListener,
    Execution,
    Order,
    OrderRejected,
    commission_for,
)
from .contracts import ContractRegistry, NoSecurityDefinition, Stock
from .market import HistoryError, Market
from .protocol import (
    EASTERN,
    HANDSHAKE_PREFIX,
    MAX_FRAME,
    ContractQuery,
    Fields,
    In,
    Out,
    ProtocolError,
    decode,
    encode,
    negotiate,
    parse_ib_datetime,
    parse_version_range,
)
from .sessions import EPOCH, hours_text, session_open

logger = logging.getLogger("ibgateway")

#: Requests answered with an error because the simulation has no such data:
#: message id -> (position of the request id, IB's error code, IB's text).
UNSUPPORTED = {
    In.REQ_MKT_DEPTH: (2, 10092, "Deep market data is not supported for this combination of "
                       "security type/exchange"),
    In.REQ_SCANNER_SUBSCRIPTION: (1, 162, "Historical Market Data Service error message:"
                                  "Scanner subscriptions are not available"),
    In.REQ_REAL_TIME_BARS: (2, 420, "Invalid Real-time Query:Real-time bars are not available"),
    In.REQ_FUNDAMENTAL_DATA: (2, 430, "We are sorry, but fundamentals data for the security "
                              "specified is not available."),
    In.REQ_CALC_IMPLIED_VOLAT: (2, 200, "No security definition has been found for the request"),
    In.REQ_CALC_OPTION_PRICE: (2, 200, "No security definition has been found for the request"),
    In.REQ_SEC_DEF_OPT_PARAMS: (1, 200, "No security definition has been found for the request"),
    In.REQ_HISTOGRAM_DATA: (1, 162, "Historical Market Data Service error message:"
                            "Histogram data is not available"),
    In.REQ_HISTORICAL_TICKS: (1, 162, "Historical Market Data Service error message:"
                              "Historical ticks are not available"),
    In.REQ_TICK_BY_TICK_DATA: (1, 10190, "Max number of tick-by-tick requests has been reached."),
    In.REQ_NEWS_ARTICLE: (1, 10172, "Failed to request news article: No data available"),
    In.REQ_HISTORICAL_NEWS: (1, 10172, "Failed to request historical news: No data available"),
    In.REQ_PNL: (1, 321, "Error validating request.-'PnL' : cause - PnL subscriptions are not "
                 "available"),
    In.REQ_PNL_SINGLE: (1, 321, "Error validating request.-'PnL' : cause - PnL subscriptions "
                        "are not available"),
    In.REQ_WSH_META_DATA: (1, 10276, "News feed is not allowed"),
    In.REQ_WSH_EVENT_DATA: (1, 10276, "News feed is not allowed"),
    In.REQ_SMART_COMPONENTS: (1, 321, "Error validating request.-'SC' : cause - Invalid BBO "
                              "exchange"),
    In.REQ_SCANNER_PARAMETERS: (None, 321, "Error validating request.-'SP' : cause - Scanner "
                                "parameters are not available"),
    In.REQ_FA: (None, 321, "Error validating request.-'FA' : cause - Not a financial advisor "
                "account"),
    In.REPLACE_FA: (None, 321, "Error validating request.-'FA' : cause - Not a financial advisor "
                    "account"),
    In.EXERCISE_OPTIONS: (2, 200, "No security definition has been found for the request"),
    In.REQ_MARKET_RULE: (None, 321, "Error validating request.-'MR' : cause - Unknown market rule"),
}  # fmt: skip

#: Requests that need no answer (cancels, settings): accepted silently, as TWS does.
SILENT = frozenset(
    [
        In.CANCEL_MKT_DEPTH, In.REQ_NEWS_BULLETINS, In.CANCEL_NEWS_BULLETINS,
        In.SET_SERVER_LOGLEVEL, In.CANCEL_SCANNER_SUBSCRIPTION, In.CANCEL_HISTORICAL_DATA,
        In.CANCEL_REAL_TIME_BARS, In.CANCEL_FUNDAMENTAL_DATA, In.CANCEL_CALC_IMPLIED_VOLAT,
        In.CANCEL_CALC_OPTION_PRICE, In.CANCEL_HISTOGRAM_DATA,
        In.CANCEL_HEAD_TIMESTAMP, In.CANCEL_PNL, In.CANCEL_PNL_SINGLE,
        In.CANCEL_TICK_BY_TICK_DATA, In.CANCEL_WSH_META_DATA, In.CANCEL_WSH_EVENT_DATA,
        In.REQ_SOFT_DOLLAR_TIERS, In.REQ_FAMILY_CODES, In.REQ_MKT_DEPTH_EXCHANGES,
        In.QUERY_DISPLAY_GROUPS, In.SUBSCRIBE_TO_GROUP_EVENTS, In.UPDATE_DISPLAY_GROUP,
        In.UNSUBSCRIBE_FROM_GROUP_EVENTS, In.VERIFY_REQUEST, In.VERIFY_MESSAGE,
        In.VERIFY_AND_AUTH_REQUEST, In.VERIFY_AND_AUTH_MESSAGE,
    ]
)  # fmt: skip

ACCOUNT_SUMMARY_TAGS = (
    "AccountType", "NetLiquidation", "TotalCashValue", "SettledCash", "AccruedCash",
    "BuyingPower", "EquityWithLoanValue", "GrossPositionValue", "InitMarginReq",
    "MaintMarginReq", "AvailableFunds", "ExcessLiquidity", "FullInitMarginReq",
    "FullMaintMarginReq", "FullAvailableFunds", "FullExcessLiquidity",
)  # fmt: skip

# IB's market data tick types used here.
BID_SIZE, BID, ASK, ASK_SIZE, LAST, LAST_SIZE, HIGH, LOW, VOLUME, CLOSE, OPEN = (
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14,
)  # fmt: skip
# reqMarketDataType: 1 live, 2 frozen, 3 delayed, 4 delayed frozen. Delayed data comes with
# tick types of its own (IB's DELAYED_BID 66 ... DELAYED_OPEN 76).
LIVE, DELAYED = 1, 3
DELAYED_TICKS = {BID: 66, ASK: 67, LAST: 68, HIGH: 72, LOW: 73, VOLUME: 74, CLOSE: 75, OPEN: 76}


def _tick(tick_type: int, market_data_type: int) -> int:
    return DELAYED_TICKS[tick_type] if market_data_type == DELAYED else tick_type


class ClientSession:
    """One API connection: handshake, startApi, then requests until the socket closes."""

    def __init__(self, server: "GatewayServer", reader, writer):
        self.server = server
        self.reader = reader
        self.writer = writer
        self.version = 0
        self.client_id: int | None = None
        self.ready = False
        self.account_updates = False
        self.positions = False
        self.account_multi: set[int] = set()
        self.account_summaries: dict[int, set[str]] = {}  # reqId -> tags asked for
        self.market_data: dict[int, str] = {}  # reqId -> symbol
        self.market_data_type = LIVE
        self.closed = asyncio.Event()
        self.requests: Counter[int] = Counter()  # requests of this client, by message id
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"

    # --- sending --------------------------------------------------------------------------
    def send(self, fields: list) -> None:
        if self.writer.is_closing():
            return
        self.writer.write(encode(*fields))

    def error(self, req_id: int, code: int, message: str) -> None:
        self.send(msg.error(self.version, req_id, code, message))

    # --- reading --------------------------------------------------------------------------
    async def _frame(self) -> bytes:
        header = await self.reader.readexactly(4)
        (size,) = struct.unpack(">I", header)
        if size > MAX_FRAME:
            raise ProtocolError(f"frame of {size} bytes")
        return await self.reader.readexactly(size)

    async def run(self) -> None:
        try:
            await self._handshake()
            while True:
                fields = decode(await self._frame())
                if fields:
                    await self._dispatch(fields)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except ProtocolError as exc:
            logger.warning("dropping %s: %s", self.peer, exc)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("connection %s failed", self.peer)
        finally:
            self.server.forget(self)
            self.closed.set()
            with contextlib.suppress(Exception):
                self.writer.close()
            logger.info("client %s (%s) disconnected", self.client_id, self.peer)

    async def _handshake(self) -> None:
        prefix = await self.reader.readexactly(len(HANDSHAKE_PREFIX))
        if prefix != HANDSHAKE_PREFIX:
            raise ProtocolError(f"expected the API handshake, got {prefix!r}")
        low, high = parse_version_range((await self._frame()).decode(errors="replace"))
        self.version = negotiate(low, high)
        if not low <= self.version <= high:
            logger.warning("client %s speaks v%s..%s; answering v%s", self.peer, low, high,
                           self.version)  # fmt: skip
        connected = datetime.now(UTC).strftime("%Y%m%d %H:%M:%S UTC")
        # Trap: the reply is exactly two fields; ib_insync takes any 2-field message before it
        # knows the server version for the handshake reply.
        self.send([self.version, connected])

    async def _dispatch(self, fields: list[str]) -> None:
        try:
            msg_id = int(fields[0])
        except ValueError:
            self.error(-1, 505, "Fatal Error: Unknown message id.")
            return
        if not self.ready and msg_id not in (In.START_API, In.SIMULATE_PRICE):
            logger.warning("client %s sent %s before startApi; ignored", self.peer, msg_id)
            return
        self.server.requests[msg_id] += 1
        self.requests[msg_id] += 1
        handler = self.server.handlers.get(msg_id)
        try:
            if handler is not None:
                result = handler(self, Fields(fields))
                if asyncio.iscoroutine(result):
                    await result
            elif msg_id in UNSUPPORTED:
                position, code, text = UNSUPPORTED[msg_id]
                req_id = int(fields[position] or -1) if position and position < len(fields) else -1
                logger.info("client %s: request %s is not simulated (error %s)", self.client_id,
                            msg_id, code)  # fmt: skip
                self.error(req_id, code, text)
            elif msg_id in SILENT:
                logger.debug("client %s: request %s accepted without reply", self.client_id,
                             msg_id)  # fmt: skip
            else:
                logger.warning("client %s: unknown request id %s", self.client_id, msg_id)
                self.error(-1, 505, "Fatal Error: Unknown message id.")
        except ProtocolError:
            raise
        except Exception as exc:
            logger.exception("client %s: request %s failed: %s", self.client_id, msg_id, fields)
            req_id = _guess_req_id(msg_id, fields)
            self.error(req_id, 320, f"Server error when reading an API client request: {exc}")


def _guess_req_id(msg_id: int, fields: list[str]) -> int:
    """The request id of a request we failed to handle, where the layout tells it."""
    position = {In.PLACE_ORDER: 1, In.REQ_HISTORICAL_DATA: 1, In.REQ_CONTRACT_DATA: 2,
                In.REQ_EXECUTIONS: 2, In.REQ_MKT_DATA: 2, In.CANCEL_ORDER: 2,
                In.REQ_HEAD_TIMESTAMP: 1, In.REQ_MATCHING_SYMBOLS: 1}.get(msg_id)  # fmt: skip
    try:
        return int(fields[position]) if position else -1
    except (IndexError, ValueError):
        return -1


class GatewayServer(BookListener):
    """The listening socket, the sessions and the request handlers."""

    def __init__(
        self,
        *,
        market: Market,
        book: Book,
        contracts: ContractRegistry,
        host: str = "127.0.0.1",
        port: int = 0,
        tick_seconds: float | None = None,
        master_client_id: int | None = None,
    ):
        self.market = market
        # Each reqHistoricalData as (symbol, endDateTime, duration, bar size), for tests that
        # count what a client asked; refusals queued by ``refuse_history`` answer the next ones.
        self.history_requests = []
        self.history_refusals = collections.deque()
        self.master_client_id = master_client_id
        self.book = book
        self.contracts = contracts
        self.host = host
        self.port = port
        self.tick_seconds = tick_seconds
        self.sessions: set[ClientSession] = set()
        # Requests received, by message id (In.*), from every client: what IB was asked.
        self.requests: Counter[int] = Counter()
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()
        book.listener = self
        market.subscribe(self._on_price)
        self.handlers = {
            In.START_API: self.start_api,
            In.REQ_IDS: self.req_ids,
            In.REQ_MANAGED_ACCTS: self.req_managed_accounts,
            In.REQ_CURRENT_TIME: self.req_current_time,
            In.REQ_CONTRACT_DATA: self.req_contract_details,
            In.REQ_MATCHING_SYMBOLS: self.req_matching_symbols,
            In.REQ_HISTORICAL_DATA: self.req_historical_data,
            In.REQ_HEAD_TIMESTAMP: self.req_head_timestamp,
            In.REQ_MKT_DATA: self.req_market_data,
            In.CANCEL_MKT_DATA: self.cancel_market_data,
            In.REQ_MARKET_DATA_TYPE: self.req_market_data_type,
            In.PLACE_ORDER: self.place_order,
            In.CANCEL_ORDER: self.cancel_order,
            In.REQ_GLOBAL_CANCEL: self.global_cancel,
            In.REQ_OPEN_ORDERS: self.req_open_orders,
            In.REQ_ALL_OPEN_ORDERS: self.req_all_open_orders,
            In.REQ_AUTO_OPEN_ORDERS: lambda session, f: None,
            In.REQ_COMPLETED_ORDERS: self.req_completed_orders,
            In.REQ_EXECUTIONS: self.req_executions,
            In.REQ_POSITIONS: self.req_positions,
            In.CANCEL_POSITIONS: self.cancel_positions,
            In.REQ_POSITIONS_MULTI: self.req_positions_multi,
            In.CANCEL_POSITIONS_MULTI: lambda session, f: None,
            In.REQ_ACCT_DATA: self.req_account_updates,
            In.REQ_ACCOUNT_UPDATES_MULTI: self.req_account_updates_multi,
            In.CANCEL_ACCOUNT_UPDATES_MULTI: self.cancel_account_updates_multi,
            In.REQ_ACCOUNT_SUMMARY: self.req_account_summary,
            In.CANCEL_ACCOUNT_SUMMARY: self.cancel_account_summary,
            In.REQ_NEWS_PROVIDERS: lambda session, f: session.send([85, 0]),
            In.REQ_USER_INFO: self.req_user_info,
            In.SIMULATE_PRICE: self.simulate_price,
        }

    @property
    def account(self) -> str:
        return self.book.account

    def now(self) -> datetime:
        return self.market.now()

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self) -> int:
        try:
            self._server = await asyncio.start_server(self._accept, self.host, self.port)
        except OSError as exc:
            # asyncio words it "error while attempting to bind on address (...): address
            # already in use"; the caller names the address, so keep the operating system's.
            if exc.errno is None:
                raise
            raise OSError(exc.errno, os.strerror(exc.errno)) from None
        self.port = self._server.sockets[0].getsockname()[1]
        self._spawn(self._housekeeping())
        if self.tick_seconds:
            self._spawn(self._ticker(self.tick_seconds))
        logger.info("loopback IB gateway listening on %s:%s", self.host, self.port)
        return self.port

    @property
    def started(self) -> bool:
        return self._server is not None

    def _spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for session in list(self.sessions):
            with contextlib.suppress(Exception):
                session.writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _accept(self, reader, writer) -> None:
        session = ClientSession(self, reader, writer)
        self.sessions.add(session)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await session.run()
        finally:
            if task is not None:
                self._tasks.discard(task)

    def forget(self, session: ClientSession) -> None:
        self.sessions.discard(session)

    async def _housekeeping(self) -> None:
        """Once a second: DAY orders expire at the close."""
        while True:
            await asyncio.sleep(1.0)
            try:
                self.book.expire(self.now())
            except Exception:
                logger.exception("expiring orders failed")

    async def _ticker(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                self.market.tick()
            except Exception:
                logger.exception("price tick failed")

    # --- whom to tell ---------------------------------------------------------------------
    def _ready(self):
        return [s for s in list(self.sessions) if s.ready]

    def _of_client(self, client_id: int):
        return [s for s in self._ready() if s.client_id == client_id]

    def _masters_but(self, client_id: int):
        """Sessions of the master API client id (IB Gateway's setting), which hear every
        client's orders, fills and commissions, less the order's own client."""
        if self.master_client_id is None or self.master_client_id == client_id:
            return []
        return self._of_client(self.master_client_id)

    # --- connection requests --------------------------------------------------------------
    async def start_api(self, session: ClientSession, f: Fields) -> None:
        if session.ready:
            return
        f.skip(2)  # message id, version
        client_id = f.integer()
        for other in self._ready():
            if other.client_id == client_id and other is not session:
                # The previous connection of a reconnecting client may still be closing on
                # our side; give its EOF a moment before calling the id taken (TWS: 326).
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(other.closed.wait(), 0.5)
                if not other.closed.is_set():
                    session.error(-1, 326, "Unable to connect as the client id is already in "
                                  "use. Retry with a unique client id.")  # fmt: skip
                    session.writer.close()
                    return
        session.client_id = client_id
        session.ready = True
        logger.info("client %s connected from %s (server version %s)", client_id, session.peer,
                    session.version)  # fmt: skip
        session.send(msg.managed_accounts([self.account]))
        session.send(msg.next_valid_id(self.book.next_order_id))
        for code, text in (
            (2104, "Market data farm connection is OK:usfarm"),
            (2106, "HMDS data farm connection is OK:ushmds"),
            (2158, "Sec-def data farm connection is OK:secdefnj"),
        ):
            session.error(-1, code, text)

    def req_ids(self, session: ClientSession, f: Fields) -> None:
        session.send(msg.next_valid_id(self.book.next_order_id))

    def req_managed_accounts(self, session: ClientSession, f: Fields) -> None:
        session.send(msg.managed_accounts([self.account]))

    def req_current_time(self, session: ClientSession, f: Fields) -> None:
        session.send(msg.current_time(int(self.now().timestamp())))

    def req_user_info(self, session: ClientSession, f: Fields) -> None:
        f.skip()
        session.send([107, f.integer(), ""])

    # --- contracts ------------------------------------------------------------------------
    def _resolve_one(self, query: ContractQuery) -> Stock:
        """The contract a data or order request means (SMART when the exchange is empty)."""
        return self.contracts.resolve(query)[0]

    def req_contract_details(self, session: ClientSession, f: Fields) -> None:
        f.skip(2)  # message id, version
        req_id = f.integer()
        query = f.contract()
        try:
            stocks = self.contracts.resolve(query)
        except NoSecurityDefinition as exc:
            session.error(req_id, exc.code, exc.message)
            return
        today = self.now().astimezone(EASTERN).date()
        trading = hours_text(self.market.calendar, today, 7, liquid=False)
        liquid = hours_text(self.market.calendar, today, 7, liquid=True)
        for stock in stocks:
            session.send(msg.contract_data(session.version, req_id, stock, trading, liquid))
        session.send(msg.contract_data_end(req_id))

    def req_matching_symbols(self, session: ClientSession, f: Fields) -> None:
        f.skip()
        req_id = f.integer()
        stocks = self.contracts.search(f.text())
        session.send(msg.symbol_samples(session.version, req_id, stocks))

    # --- history --------------------------------------------------------------------------
    def req_historical_data(self, session: ClientSession, f: Fields) -> None:
        f.skip()  # message id (no version field)
        req_id = f.integer()
        query = f.contract()
        f.skip()  # includeExpired
        end_text = f.text()
        bar_size = f.text()
        duration = f.text()
        self.history_requests.append((query.symbol, end_text, duration, bar_size))
        refusal = self.history_refusals.popleft() if self.history_refusals else None
        if refusal is not None:
            session.error(req_id, *refusal)
            return
        f.skip()  # useRTH: extended hours are not simulated, bars are always RTH
        what_to_show = f.text()
        format_date = f.integer(1)
        if query.sec_type.upper() == "BAG":
            f.skip(4 * f.integer())
        keep_up_to_date = f.flag()
        try:
            stock = self._resolve_one(query)
        except NoSecurityDefinition as exc:
            session.error(req_id, exc.code, exc.message)
            return
        if keep_up_to_date and end_text:
            session.error(req_id, 321, "Error validating request.-'bX' : cause - End date not "
                          "supported with live updates")  # fmt: skip
            return
        try:
            end = parse_ib_datetime(end_text)
        except (ValueError, KeyError):
            session.error(req_id, 321, f"Error validating request.-'bX' : cause - Invalid end "
                          f"date/time {end_text!r}")  # fmt: skip
            return
        try:
            bars, start, stop = self.market.bars(
                stock.symbol, end=end, duration=duration, bar_size=bar_size,
                what_to_show=what_to_show,
            )  # fmt: skip
        except HistoryError as exc:
            session.error(req_id, exc.code, exc.message)
            return
        if not bars:
            session.error(req_id, 162, "Historical Market Data Service error message:HMDS query "
                          f"returned no data: {stock.symbol}@SMART Trades")  # fmt: skip
            return
        session.send(msg.historical_data(req_id, start, stop, bars, format_date))

    def req_head_timestamp(self, session: ClientSession, f: Fields) -> None:
        f.skip()
        req_id = f.integer()
        query = f.contract()
        f.skip(3)  # includeExpired, useRTH, whatToShow
        format_date = f.integer(1)
        try:
            stock = self._resolve_one(query)
        except NoSecurityDefinition as exc:
            session.error(req_id, exc.code, exc.message)
            return
        series = self.market.series(stock.symbol)
        first = getattr(series, "bars_in", None)
        if first:
            moment = first[0].time
            moment = moment if isinstance(moment, datetime) else session_open(moment)
        else:
            moment = session_open(EPOCH)
        session.send(msg.head_timestamp(req_id, moment, format_date))

    # --- market data ----------------------------------------------------------------------
    def req_market_data(self, session: ClientSession, f: Fields) -> None:
        f.skip(2)
        req_id = f.integer()
        query = f.contract()
        if query.sec_type.upper() == "BAG":
            f.skip(4 * f.integer())
        if f.flag():
            f.skip(3)
        f.skip()  # genericTickList
        snapshot = f.flag()
        try:
            stock = self._resolve_one(query)
        except NoSecurityDefinition as exc:
            session.error(req_id, exc.code, exc.message)
            return
        kind = session.market_data_type
        session.send(msg.market_data_type(req_id, kind))
        session.send(msg.tick_req_params(req_id))
        stats = self.market.session_stats(stock.symbol)
        self._send_quote(session, req_id, stock.symbol)
        for tick, field in ((HIGH, "high"), (LOW, "low"), (CLOSE, "close"), (OPEN, "open")):
            session.send(msg.tick_price(req_id, _tick(tick, kind), stats[field], 0))
        session.send(msg.tick_size(req_id, _tick(VOLUME, kind), int(stats["volume"])))
        if snapshot:
            session.send(msg.tick_snapshot_end(req_id))
        else:
            session.market_data[req_id] = stock.symbol

    def _send_quote(self, session: ClientSession, req_id: int, symbol: str) -> None:
        price = float(self.market.price(symbol))
        kind = session.market_data_type
        session.send(msg.tick_price(req_id, _tick(BID, kind), max(0.01, price - 0.01), 300))
        session.send(msg.tick_price(req_id, _tick(ASK, kind), price + 0.01, 200))
        session.send(msg.tick_price(req_id, _tick(LAST, kind), price, 100))

    def req_market_data_type(self, session: ClientSession, f: Fields) -> None:
        """Live (1, 2) or delayed (3, 4) ticks for this connection's later requests. The
        simulated price is the same either way; delayed data says so by its tick types."""
        f.skip(2)
        kind = f.integer()
        if kind not in (1, 2, 3, 4):
            session.error(-1, 321, f"Error validating request.-'bD' : cause - Invalid market "
                          f"data type {kind}")  # fmt: skip
            return
        session.market_data_type = DELAYED if kind in (3, 4) else LIVE

    def cancel_market_data(self, session: ClientSession, f: Fields) -> None:
        f.skip(2)
        session.market_data.pop(f.integer(), None)

    def _on_price(self, symbol: str, price) -> None:
        for session in self._ready():
            for req_id, subscribed in list(session.market_data.items()):
                if subscribed == symbol:
                    self._send_quote(session, req_id, symbol)
        self.book.on_price(symbol, price, self.now())

    def simulate_price(self, session: ClientSession, f: Fields) -> None:
        """The simulator's own request (``control.set_price``): move a symbol's price, as the
        market would; resting orders and streams react before the answer is sent. It needs no
        startApi, so it takes no client id from anyone."""
        f.skip(2)  # message id, version
        symbol = f.text().strip().upper()
        try:
            stock = self._resolve_one(ContractQuery(symbol=symbol, sec_type="STK"))
        except NoSecurityDefinition as exc:
            session.error(-1, exc.code, f"{exc.message}: {symbol!r}")
            return
        try:
            price = self.market.set_price(stock.symbol, f.text().strip())
        except (ValueError, ArithmeticError) as exc:
            session.error(-1, 321, f"Error validating request.-'price' : cause - {exc}")
            return
        logger.info("price of %s set to %s by %s", stock.symbol, price, session.peer)
        session.send([Out.SIMULATED_PRICE, stock.symbol, price])

    # --- orders ---------------------------------------------------------------------------
    def place_order(self, session: ClientSession, f: Fields) -> None:
        order_id, query, request = msg.parse_place_order(f)
        try:
            stock = self._resolve_one(query)
        except NoSecurityDefinition as exc:
            session.error(order_id, exc.code, exc.message)
            return
        if request.what_if:
            self._what_if(session, order_id, stock, request)
            return
        try:
            self.book.place(session.client_id, order_id, stock, request, self.now())
        except OrderRejected as exc:
            session.error(order_id, exc.code, exc.message)
            order = self.book.order(session.client_id, order_id)
            if order is not None:
                session.send(msg.order_status(order))

    def _what_if(self, session: ClientSession, order_id: int, stock: Stock, request) -> None:
        """A what-if order is answered with one openOrder carrying the margin impact."""
        price = self.market.price(stock.symbol)
        values = self.book.account_values()
        change = (request.quantity * price * MARGIN_RATE).quantize(CENT)
        equity = values["EquityWithLoanValue"]
        commission = commission_for(request.quantity, price)
        state = {
            "status": "PreSubmitted",
            "initMarginBefore": values["InitMarginReq"],
            "maintMarginBefore": values["MaintMarginReq"],
            "equityWithLoanBefore": equity,
            "initMarginChange": change,
            "maintMarginChange": change,
            "equityWithLoanChange": -commission,
            "initMarginAfter": values["InitMarginReq"] + change,
            "maintMarginAfter": values["MaintMarginReq"] + change,
            "equityWithLoanAfter": equity - commission,
            "commission": commission,
            "minCommission": commission,
            "maxCommission": commission,
            "commissionCurrency": "USD",
        }
        state = {
            key: value if key.endswith("ommission") else msg.money(value)
            for key, value in state.items()
        }
        order = Order(
            perm_id=0, client_id=session.client_id, order_id=order_id, contract=stock,
            action=request.action, quantity=request.quantity, order_type=request.order_type,
            lmt_price=request.lmt_price, aux_price=request.aux_price, tif=request.tif,
            account=self.account, order_ref=request.order_ref,
            outside_rth=request.outside_rth, placed_at=self.now(),
        )  # fmt: skip
        session.send(msg.open_order(session.version, order, what_if=state))

    def cancel_order(self, session: ClientSession, f: Fields) -> None:
        f.skip(2)
        order_id = f.integer()
        try:
            self.book.cancel(session.client_id, order_id, self.now())
        except OrderRejected as exc:
            session.error(order_id, exc.code, exc.message)

    def global_cancel(self, session: ClientSession, f: Fields) -> None:
        self.book.cancel_all(self.now())

    def req_open_orders(self, session: ClientSession, f: Fields) -> None:
        self._send_open_orders(session, self.book.open_orders(session.client_id))

    def req_all_open_orders(self, session: ClientSession, f: Fields) -> None:
        self._send_open_orders(session, self.book.open_orders())

    def _send_open_orders(self, session: ClientSession, orders: list[Order]) -> None:
        for order in orders:
            session.send(msg.open_order(session.version, order))
            session.send(msg.order_status(order))
        session.send(msg.open_order_end())

    def req_completed_orders(self, session: ClientSession, f: Fields) -> None:
        for order in self.book.completed_orders():
            session.send(msg.completed_order(session.version, order))
        session.send(msg.completed_orders_end())

    def req_executions(self, session: ClientSession, f: Fields) -> None:
        f.skip(2)
        req_id = f.integer()
        client_id = f.integer()
        account = f.text()
        since_text = f.text()
        symbol = f.text().upper()
        sec_type = f.text().upper()
        exchange = f.text().upper()
        side = f.text().upper()
        try:
            since = parse_ib_datetime(since_text)
        except (ValueError, KeyError):
            since = None
        sides = {"BUY": "BOT", "SELL": "SLD", "BOT": "BOT", "SLD": "SLD"}
        matching = [
            e
            for e in self.book.executions
            if (not client_id or e.client_id == client_id)
            and (not account or e.account == account)
            and (since is None or e.time >= since)
            and (not symbol or e.contract.symbol == symbol)
            and (not sec_type or e.contract.sec_type == sec_type)
            and (not exchange or e.exchange == exchange or exchange == "SMART")
            and (not side or e.side == sides.get(side, side))
        ]
        for execution in matching:
            session.send(msg.exec_details(req_id, execution))
        for execution in matching:
            session.send(msg.commission_report(execution))
        session.send(msg.exec_details_end(req_id))

    # --- positions and account ------------------------------------------------------------
    def req_positions(self, session: ClientSession, f: Fields) -> None:
        session.positions = True
        for holding in self.book.holdings.values():
            if holding.quantity != 0:
                session.send(msg.position(self.account, holding))
        session.send(msg.position_end())

    def cancel_positions(self, session: ClientSession, f: Fields) -> None:
        session.positions = False

    def req_positions_multi(self, session: ClientSession, f: Fields) -> None:
        f.skip(2)
        req_id = f.integer()
        for holding in self.book.holdings.values():
            if holding.quantity != 0:
                session.send(msg.position_multi(req_id, self.account, holding))
        session.send(msg.position_multi_end(req_id))

    def _account_fields(self) -> list[tuple[str, object, str]]:
        values = self.book.account_values()
        rows = [("AccountCode", self.account, ""), ("AccountType", "INDIVIDUAL", ""),
                ("AccountReady", "true", ""), ("Currency", "USD", "USD"),
                ("Currency", "BASE", "BASE")]  # fmt: skip
        rows += [(tag, value, "USD") for tag, value in values.items()]
        rows.append(("CashBalance", values["CashBalance"], "BASE"))
        rows.append(("NetLiquidationByCurrency", values["NetLiquidation"], "BASE"))
        return rows

    def _send_portfolio(self, session: ClientSession) -> None:
        for tag, value, currency in self._account_fields():
            session.send(msg.account_value(tag, value, currency, self.account))
        for holding in self.book.holdings.values():
            price = self.market.price(holding.contract.symbol)
            session.send(msg.portfolio_value(self.account, holding, price))
        session.send(msg.account_time(self.now()))

    def req_account_updates(self, session: ClientSession, f: Fields) -> None:
        f.skip(2)
        subscribe = f.flag()
        account = f.text()
        if account and account != self.account:
            session.error(-1, 321, f"Error validating request.-'bB' : cause - Invalid account "
                          f"code {account!r}")  # fmt: skip
            return
        session.account_updates = subscribe
        if subscribe:
            self._send_portfolio(session)
            session.send(msg.account_download_end(self.account))

    def req_account_updates_multi(self, session: ClientSession, f: Fields) -> None:
        f.skip(2)
        req_id = f.integer()
        account = f.text()
        if account and account not in (self.account, "All"):
            session.error(req_id, 321, f"Error validating request.-'bB' : cause - Invalid "
                          f"account code {account!r}")  # fmt: skip
            return
        session.account_multi.add(req_id)
        self._send_account_multi(session, req_id)
        session.send(msg.account_update_multi_end(req_id))

    def _send_account_multi(self, session: ClientSession, req_id: int) -> None:
        for tag, value, currency in self._account_fields():
            session.send(msg.account_update_multi(req_id, self.account, tag, value, currency))

    def cancel_account_updates_multi(self, session: ClientSession, f: Fields) -> None:
        f.skip(2)
        session.account_multi.discard(f.integer())

    def req_account_summary(self, session: ClientSession, f: Fields) -> None:
        f.skip(2)
        req_id = f.integer()
        f.skip()  # group ("All")
        tags = {t.strip() for t in f.text().split(",") if t.strip()}
        session.account_summaries[req_id] = tags
        self._send_account_summary(session, req_id, tags)

    def cancel_account_summary(self, session: ClientSession, f: Fields) -> None:
        f.skip(2)
        session.account_summaries.pop(f.integer(), None)

    def _send_account_summary(self, session: ClientSession, req_id: int, tags: set) -> None:
        """The summary, again whenever the account changes (IB repeats it every few minutes
        to a subscription; here at once, so a test need not wait)."""
        values = self.book.account_values()
        for tag in ACCOUNT_SUMMARY_TAGS:
            if tags and tag not in tags and "All" not in tags:
                continue
            if tag == "AccountType":
                session.send(msg.account_summary(req_id, self.account, tag, "INDIVIDUAL", ""))
            elif tag in values:
                session.send(msg.account_summary(req_id, self.account, tag, values[tag], "USD"))
        session.send(msg.account_summary_end(req_id))

    # --- book events (BookListener) -------------------------------------------------------
    def order_changed(self, order: Order, *, open_order: bool) -> None:
        for session in self._of_client(order.client_id):
            if open_order:
                session.send(msg.open_order(session.version, order))
            session.send(msg.order_status(order))
        for session in self._masters_but(order.client_id):
            # The master may not know the order yet: openOrder first, as its client needs
            # the order before its status (ib_insync drops a status of an unknown order).
            session.send(msg.open_order(session.version, order))
            session.send(msg.order_status(order))

    def executed(self, order: Order, execution: Execution) -> None:
        for session in self._of_client(order.client_id) + self._masters_but(order.client_id):
            session.send(msg.exec_details(-1, execution))

    def commission(self, execution: Execution) -> None:
        for session in self._of_client(execution.client_id) + self._masters_but(
            execution.client_id
        ):
            session.send(msg.commission_report(execution))

    def portfolio_changed(self, contract: Stock) -> None:
        holding = self.book.holdings.get(contract.con_id)
        for session in self._ready():
            if session.positions and holding is not None:
                session.send(msg.position(self.account, holding))
            if session.account_updates:
                self._send_portfolio(session)
            for req_id in session.account_multi:
                self._send_account_multi(session, req_id)
            for req_id, tags in list(session.account_summaries.items()):
                self._send_account_summary(session, req_id, tags)
