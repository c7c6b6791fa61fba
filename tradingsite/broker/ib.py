"""The broker on ib_insync: the only module of the product that imports it.

To move to the maintained fork, replace ``ib_insync`` by ``ib_async`` in the import below.
"""

import asyncio
import functools
import logging
import threading
import time as clock
from collections import deque
from dataclasses import replace
from datetime import UTC, datetime, time
from decimal import Decimal

import ib_insync as ibapi

from .loop import ensure_event_loop
from .pacing import pacing_for
from .types import (
    AccountSummary,
    Bar,
    BrokerError,
    BrokerOrderStatus,
    BrokerUnavailable,
    ClientIdInUse,
    ContractInfo,
    ExecutionReport,
    PriceReport,
    SymbolMatch,
)
from .vocabulary import bar_error, period_error

logger = logging.getLogger(__name__)

# IB errors on a new order that ib_insync takes for warnings: 110, a price off the contract's
# price steps.
ORDER_REFUSALS = {110}
CLIENT_ID_IN_USE = 326
UNACKNOWLEDGED = ("PendingSubmit", "ApiPending")
REFUSED = ("Cancelled", "ApiCancelled", "Inactive")  # IB's end of an order it did not take
DELAYED_DATA = (3, 4)  # reqMarketDataType: delayed, delayed frozen
SUMMARY_TAGS = {
    "NetLiquidation": "net_liquidation",
    "TotalCashValue": "cash",
    "BuyingPower": "buying_power",
    "AvailableFunds": "available_funds",
}


def _usable(value):
    """A price IB gave, or None: ib_insync says "none" with NaN, IB sometimes with -1 or 0."""
    try:
        number = Decimal(str(value))
    except (ArithmeticError, ValueError, TypeError):
        return None
    return number if number.is_finite() and number > 0 else None


def _decimal(value):
    return Decimal(str(value))


def _ib_order(ticket):
    """ib_insync's order for a ticket (IB's auxPrice is a stop's trigger, or a trailing
    stop's amount)."""
    order = ibapi.Order(
        action=ticket.side,
        totalQuantity=float(ticket.quantity),
        orderType=ticket.order_type,
        tif=ticket.tif,
        orderRef=ticket.order_ref,
    )
    if ticket.price is not None:
        order.lmtPrice = float(ticket.price)
    if ticket.stop_price is not None:
        order.auxPrice = float(ticket.stop_price)
    if ticket.trailing_amount is not None:
        order.auxPrice = float(ticket.trailing_amount)
    if ticket.trailing_percent is not None:
        order.trailingPercent = float(ticket.trailing_percent)
    if ticket.oca_group:
        order.ocaGroup, order.ocaType = ticket.oca_group, ticket.oca_type
    return order


def _as_utc(moment):
    if isinstance(moment, datetime):
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return datetime.combine(moment, time(), tzinfo=UTC)  # daily bars come as dates


def _on_own_loop(method):
    """Run ``method`` with the broker's own event loop as the calling thread's, one thread at
    a time.

    Trap: ib_insync runs every request on the event loop of the thread that calls it, and the
    connection's socket is read only by the loop it was opened on. A web server answers each
    request on a thread of its own, so a second thread's request ran on another loop and the
    replies sat unread on the socket until the request timed out. Every thread now drives the
    one loop of the connection, in turn, and its listeners still run in the calling thread (so
    their database work is that thread's).
    """

    @functools.wraps(method)
    def driving(self, *args, **kwargs):
        with self._driver:
            try:
                previous = asyncio.get_event_loop_policy().get_event_loop()
            except RuntimeError:  # a thread that never had one
                previous = None
            asyncio.set_event_loop(self.loop)
            try:
                return method(self, *args, **kwargs)
            finally:
                asyncio.set_event_loop(previous)

    return driving


class IBBroker:
    """One ib_insync connection: requests with a timeout, pacing, and order events. Its public
    methods may be called from any thread (``_on_own_loop``)."""

    def __init__(
        self, *, host, port, client_id, timeout=10.0, pacing_clock="real", market_data_type=1,
        heartbeat_seconds=5.0, heartbeat_timeout=2.0, ack_timeout=5.0, pacing_redis_url="",
    ):  # fmt: skip
        self.host = host
        self.port = port
        self.client_id = client_id
        self.timeout = timeout
        self.heartbeat_seconds = heartbeat_seconds
        self.heartbeat_timeout = heartbeat_timeout
        self.ack_timeout = ack_timeout
        self._last_heard = 0.0  # monotonic time of IB's last answer on this connection
        # IB's historical-data pacing, counted in Redis for the whole gateway when there is one
        self.pacing = pacing_for(
            pacing_clock, sleep=self.wait, redis_url=pacing_redis_url, gateway=f"{host}:{port}"
        )
        ensure_event_loop()  # ib_insync's import needs one in this thread
        self.loop = asyncio.new_event_loop()
        self._driver = threading.RLock()
        self.ib = ibapi.IB()
        self.ib.RequestTimeout = timeout
        self._listeners = []
        self._pending = deque()  # events waiting to reach the listeners, in arrival order
        self._contracts = {}
        self.ib.execDetailsEvent += self._on_exec_details
        self.ib.commissionReportEvent += self._on_commission
        self.ib.orderStatusEvent += self._on_order_status
        self.ib.errorEvent += self._on_error
        self.ib.pendingTickersEvent += self._on_tickers
        self._errors = {}  # IB's errors during the current request: req id -> (code, text)
        self._streams = {}  # conid -> contract of each streaming market data subscription
        self.market_data_type = market_data_type

    # --- connection ----------------------------------------------------------------------
    @_on_own_loop
    def connect(self):
        try:
            self.ib.connect(self.host, self.port, clientId=self.client_id, timeout=self.timeout)
            self.ib.reqMarketDataType(self.market_data_type)
            self._last_heard = clock.monotonic()
        except (ConnectionRefusedError, OSError, TimeoutError) as exc:
            if any(code == CLIENT_ID_IN_USE for code, _ in self._errors.values()):
                raise ClientIdInUse(
                    f"IB Gateway/TWS at {self.host}:{self.port} refused client id "
                    f"{self.client_id}: another connection is using it. Each process needs its "
                    "own (the site's processes lease theirs from IBKR_CLIENT_ID_RANGE, see the "
                    "README)."
                ) from None
            reason = (
                "timed out"
                if isinstance(exc, (asyncio.TimeoutError, TimeoutError))
                else (exc.strerror or type(exc).__name__)
            )
            raise BrokerUnavailable(
                f"Cannot reach IB Gateway/TWS at {self.host}:{self.port} ({reason}). Start it, "
                "or set IBKR_HOST and IBKR_PORT to where it listens."
            ) from None
        return self

    @_on_own_loop
    def is_connected(self):
        return self.ib.isConnected()

    @_on_own_loop
    def alive(self):
        """Whether the socket is alive now (``_check_alive``); a dead one is closed."""
        try:
            self._check_alive()
        except BrokerUnavailable:
            return False
        return True

    def _lost(self, why):
        return BrokerUnavailable(
            f"Lost the connection to IB Gateway/TWS at {self.host}:{self.port} ({why})."
        )

    def _check_alive(self):
        """Before a request or an order: is anyone still at the other end of the socket?

        Trap: ib_insync learns that its socket closed only when its event loop runs, and
        between two requests nothing runs it (bars from the cache, a wait step, a model's
        answer). An order written into a dead socket looked sent: ib_insync gave it an id that
        IB never saw. So the loop runs once (a closed socket is seen), and a connection idle
        for ``heartbeat_seconds`` asks IB's time first (a gateway gone without closing the
        socket does not answer within ``heartbeat_timeout``)."""
        try:
            self.ib.sleep(0)
        except ConnectionError as exc:
            raise self._lost(str(exc)) from None
        if not self.ib.isConnected():
            raise self._lost("the gateway closed it")
        if clock.monotonic() - self._last_heard < self.heartbeat_seconds:
            return
        try:
            ibapi.util.run(self.ib.reqCurrentTimeAsync(), timeout=self.heartbeat_timeout)
        except (TimeoutError, ConnectionError) as exc:
            self.ib.disconnect()
            why = (
                f"no answer to a heartbeat within {self.heartbeat_timeout:g}s"
                if isinstance(exc, TimeoutError)
                else str(exc) or "the gateway closed it"
            )
            raise self._lost(why) from None
        self._last_heard = clock.monotonic()

    @_on_own_loop
    def disconnect(self):
        self.ib.disconnect()
        # Nothing runs this loop but the broker's own calls: run it once more so that it
        # closes the socket, then close it (a new connection gets a new broker and loop).
        # Trap: a thread that runs an event loop of its own (Playwright's, an async server's)
        # may not run another one: that last turn then runs on a thread of its own.
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self._close_loop()
        else:
            closer = threading.Thread(target=self._close_loop)
            closer.start()
            closer.join()

    def _close_loop(self):
        self.loop.run_until_complete(asyncio.sleep(0))
        self.loop.close()

    @_on_own_loop
    def account(self):
        accounts = self.ib.managedAccounts()
        return accounts[0] if accounts else ""

    @_on_own_loop
    def wait(self, seconds):
        """Let ib_insync's loop run (events arrive) for ``seconds``, then apply the events."""
        try:
            self.ib.sleep(seconds)
        except ConnectionError as exc:
            raise BrokerUnavailable(
                f"Lost the connection to IB Gateway/TWS at {self.host}:{self.port} ({exc})."
            ) from None
        self._deliver()

    def _request(self, what, call, *args):
        self._check_alive()
        self._errors.clear()
        try:
            result = call(*args)
        except TimeoutError:
            raise BrokerError(
                f"IB did not answer {what} within {self.timeout:g}s ({self.host}:{self.port})."
            ) from None
        except ConnectionError as exc:
            raise self._lost(str(exc)) from None
        self._last_heard = clock.monotonic()
        self._deliver()
        return result

    # --- contracts and data --------------------------------------------------------------
    @_on_own_loop
    def resolve(self, *, symbol, exchange="SMART", currency="USD", sec_type="STK"):
        query = ibapi.Contract(
            secType=sec_type, symbol=symbol.upper(), exchange=exchange, currency=currency
        )
        details = self._request(f"contract details for {symbol}", self.ib.reqContractDetails, query)
        if not details:
            message = self._errors.pop("contract", "") or "no security definition found"
            raise BrokerError(
                f"IB knows no {sec_type} {symbol} on {exchange} in {currency}: {message}."
            )
        if len(details) > 1:
            raise BrokerError(
                f"{symbol} on {exchange} is ambiguous at IB ({len(details)} contracts); "
                "name the exchange or currency."
            )
        found = details[0].contract
        self._contracts[found.conId] = found
        return ContractInfo(
            conid=found.conId,
            symbol=found.symbol,
            exchange=found.exchange or exchange,
            currency=found.currency or currency,
            sec_type=found.secType or sec_type,
            primary_exchange=found.primaryExchange,
        )

    @_on_own_loop
    def matching_symbols(self, *, pattern):
        """IB's symbol search (reqMatchingSymbols): the stocks whose symbol starts with, or
        whose name contains, ``pattern``. IB answers at most one such request a second."""
        found = self._request(f"matching symbols for {pattern!r}", self.ib.reqMatchingSymbols,
                              pattern)  # fmt: skip
        return [
            SymbolMatch(
                conid=sample.contract.conId,
                symbol=sample.contract.symbol,
                description=sample.contract.description or "",
                sec_type=sample.contract.secType,
                currency=sample.contract.currency,
                primary_exchange=sample.contract.primaryExchange,
            )
            for sample in found or []
            if sample.contract.secType == "STK"
        ]

    def _contract(self, info):
        return self._contracts.get(info.conid) or ibapi.Contract(
            conId=info.conid,
            secType=info.sec_type,
            symbol=info.symbol,
            exchange=info.exchange,
            currency=info.currency,
        )

    @_on_own_loop
    def historical_bars(
        self, *, contract, period, bar, what_to_show="TRADES", end=None, on_wait=None
    ):
        """Bars of ``period`` ending now, or at ``end`` (a tz-aware datetime); a request IB's
        pacing rules hold back waits first, telling ``on_wait(seconds)`` before it does."""
        problem = period_error(period) or bar_error(bar)
        if problem:
            raise BrokerError(problem)
        self.pacing.acquire(
            (contract.conid, period, bar, what_to_show, end), contract.conid, on_wait=on_wait
        )
        bars = self._request(
            f"historical data for {contract.symbol} {period}/{bar}",
            self.ib.reqHistoricalData,
            self._contract(contract),
            end or "",
            period,
            bar,
            what_to_show,
            True,
        )
        # Trap: ib_insync answers a refused request with no bars; IB's reason came as an error
        # with the request's id.
        refusal = self._errors.get(bars.reqId) if not bars else None
        if refusal:
            code, message = refusal
            raise BrokerError(
                f"IB refused historical data for {contract.symbol} {period} / {bar}: "
                f"error {code}, {message}"
            )
        return [
            Bar(
                time=_as_utc(b.date),
                open=float(b.open),
                high=float(b.high),
                low=float(b.low),
                close=float(b.close),
                volume=float(b.volume),
            )
            for b in bars
        ]

    # --- prices and the account ---------------------------------------------------------
    @_on_own_loop
    def prices(self, *, contracts):
        """A snapshot of each contract's price now: {conid: PriceReport}. A contract IB gives
        no usable price for (none, NaN, zero or negative) is a BrokerError naming it."""
        tickers = self._request(
            "market data snapshots", self.ib.reqTickers, *(self._contract(c) for c in contracts)
        )
        found = {}
        for contract, ticker in zip(contracts, tickers, strict=True):
            report = self._price_report(ticker)
            if report is None:
                raise BrokerError(
                    f"IB gave no usable price for {contract.symbol} (last {ticker.last}, bid "
                    f"{ticker.bid}, ask {ticker.ask})."
                )
            found[contract.conid] = report
        return found

    @_on_own_loop
    def stream_prices(self, *, contracts):
        """Keep streaming market data for exactly ``contracts``: every move reaches the
        listeners as a ``price`` event (delivered when the connection is driven)."""
        wanted = {c.conid: c for c in contracts}
        for conid in set(self._streams) - set(wanted):
            self.ib.cancelMktData(self._streams.pop(conid))
        for conid, info in wanted.items():
            if conid not in self._streams:
                contract = self._contract(info)
                self._streams[conid] = contract
                self.ib.reqMktData(contract, "", False, False)

    @_on_own_loop
    def account_summary(self):
        """The account's net liquidation, cash, buying power and available funds (IB's
        account summary, kept current by IB once asked)."""
        values = self._request("the account summary", self.ib.accountSummary)
        account = self.ib.managedAccounts()[0] if self.ib.managedAccounts() else ""
        found, currency = {}, ""
        for value in values:
            field = SUMMARY_TAGS.get(value.tag)
            if (
                field
                and value.currency not in ("", "BASE")
                and (not account or value.account == account)
            ):
                try:
                    number = Decimal(value.value)
                except ArithmeticError:
                    number = None
                if number is None or not number.is_finite():
                    raise BrokerError(
                        f"IB's account summary gave {value.tag} {value.value!r}, not a number."
                    )
                found[field] = number
                currency = value.currency
        missing = [tag for tag, field in SUMMARY_TAGS.items() if field not in found]
        if missing:
            raise BrokerError(
                f"IB's account summary has no {', '.join(missing)} for account "
                f"{account or '(none named)'}."
            )
        return AccountSummary(account=account, currency=currency, time=datetime.now(UTC), **found)

    def _price_report(self, ticker):
        price = _usable(ticker.marketPrice())
        if price is None:
            return None
        moment = ticker.time or datetime.now(UTC)
        return PriceReport(
            conid=ticker.contract.conId,
            price=price,
            time=_as_utc(moment),
            delayed=ticker.marketDataType in DELAYED_DATA,
        )

    def _on_tickers(self, tickers):
        for ticker in tickers:
            if ticker.contract is not None and ticker.contract.conId in self._streams:
                report = self._price_report(ticker)
                if report is not None:
                    self._emit("price", report)

    # --- orders --------------------------------------------------------------------------
    @_on_own_loop
    def place_order(self, *, contract, ticket):
        order = _ib_order(ticket)
        trade = self._request("placeOrder", self.ib.placeOrder, self._contract(contract), order)
        try:
            self._acknowledged(trade)
        finally:
            self._deliver()
        return trade.order.orderId

    @_on_own_loop
    def place_bracket(self, *, contract, entry, children, oca_group):
        """The entry and its children (take profit, stop loss) as IB's bracket: the children
        name the entry as their parent and share one OCA group that reduces the others on each
        fill (ocaType 2); only the last order is transmitted, which sends the whole group, so
        IB never works an entry without its protection. Returns IB's ids, entry first."""
        parent = _ib_order(entry)
        parent.orderId = self.ib.client.getReqId()
        parent.transmit = False
        orders = [parent]
        for number, ticket in enumerate(children, start=1):
            child = _ib_order(ticket)
            child.parentId = parent.orderId
            child.ocaGroup, child.ocaType = oca_group, 2
            child.transmit = number == len(children)
            orders.append(child)
        ib_contract = self._contract(contract)
        trades = [self._request("placeOrder", self.ib.placeOrder, ib_contract, o) for o in orders]
        try:
            for trade in trades:
                self._acknowledged(trade)
        except BrokerError:
            for trade in trades:  # none of it may work at IB when the site calls it refused
                if trade.orderStatus.status not in REFUSED and self.ib.isConnected():
                    self.ib.cancelOrder(trade.order)
            raise
        finally:
            self._deliver()
        return [trade.order.orderId for trade in trades]

    def _acknowledged(self, trade):
        """Wait until IB has taken the order (its openOrder / orderStatus), at most
        ``ack_timeout`` seconds. An order IB refused, or did not acknowledge in time, or whose
        connection dropped first, is a BrokerError saying which: it was not placed.

        An order that was never acknowledged is cancelled (if IB got it late, it must not
        work an order the site reports as rejected)."""
        order_id = trade.order.orderId
        deadline = clock.monotonic() + self.ack_timeout
        while True:
            status = trade.orderStatus.status
            code, message = self._errors.get(order_id, (None, ""))
            if status in REFUSED or code in ORDER_REFUSALS:
                reason = f"error {code}, {message}" if code else (status or "refused")
                raise BrokerError(f"IB refused order {order_id}: {reason}")
            if status not in UNACKNOWLEDGED:
                self._last_heard = clock.monotonic()
                return
            if not self.ib.isConnected():
                raise self._lost(f"before IB acknowledged order {order_id}")
            left = deadline - clock.monotonic()
            if left <= 0:
                break
            try:
                self.ib.waitOnUpdate(timeout=min(left, 0.25))
            except ConnectionError:
                raise self._lost(f"before IB acknowledged order {order_id}") from None
        try:
            self.ib.cancelOrder(trade.order)
        except ConnectionError:
            pass  # nothing to cancel through a dead socket
        raise BrokerError(
            f"IB did not acknowledge order {order_id} within {self.ack_timeout:g}s "
            f"({self.host}:{self.port}); it was not placed."
        )

    @_on_own_loop
    def cancel_order(self, *, broker_order_id):
        for trade in self.ib.trades():
            if trade.order.orderId == broker_order_id:
                self._request("cancelOrder", self.ib.cancelOrder, trade.order)
                return
        raise BrokerError(f"IB has no open order {broker_order_id} in this session.")

    @_on_own_loop
    def cancel_all(self):
        """IB's global cancel: every working order of the account, whichever client placed it
        (cancelOrder reaches only the placing client's own orders)."""
        self._request("reqGlobalCancel", self.ib.reqGlobalCancel)

    @_on_own_loop
    def order_statuses(self):
        """Every order IB reports: open ones and those completed today."""
        self._request("open orders", self.ib.reqAllOpenOrders)
        self._request("completed orders", self.ib.reqCompletedOrders, False)
        return [self._status(trade) for trade in self.ib.trades()]

    @_on_own_loop
    def executions(self):
        """Every execution IB has today, with its commission when it has been reported."""
        fills = self._request("executions", self.ib.reqExecutions)
        return [self._report(fill) for fill in fills]

    # --- events --------------------------------------------------------------------------
    def listen(self, listener):
        if listener not in self._listeners:
            self._listeners.append(listener)

    def _status(self, trade):
        status = trade.orderStatus
        message = trade.log[-1].message if trade.log else ""
        return BrokerOrderStatus(
            broker_order_id=trade.order.orderId,
            order_ref=trade.order.orderRef or "",
            status=status.status,
            filled=_decimal(status.filled),
            remaining=_decimal(status.remaining),
            avg_fill_price=_decimal(status.avgFillPrice) if status.avgFillPrice else None,
            message=message,
        )

    def _report(self, fill):
        execution = fill.execution
        commission = fill.commissionReport
        return ExecutionReport(
            exec_id=execution.execId,
            broker_order_id=execution.orderId,
            order_ref=execution.orderRef or "",
            conid=fill.contract.conId,
            side="BUY" if execution.side in ("BOT", "BUY") else "SELL",
            quantity=_decimal(execution.shares),
            price=_decimal(execution.price),
            time=_as_utc(execution.time),
            commission=_decimal(commission.commission)
            if commission and commission.execId
            else None,
        )

    def _emit(self, name, record):
        # Trap: ib_insync calls this from inside its running event loop, where Django refuses
        # database work; the listeners get the event once the loop has returned (_deliver).
        self._pending.append((name, record))

    def _deliver(self):
        while self._pending:
            name, record = self._pending.popleft()
            for listener in self._listeners:
                handler = getattr(listener, name, None)
                if handler is None:
                    continue
                try:
                    handler(record)
                except Exception:
                    # One listener's failure must not stop the others; the periodic reconcile
                    # picks the event up again from the broker.
                    logger.exception("broker listener failed on %s %s", name, record)

    def _on_exec_details(self, trade, fill):
        self._emit("execution", self._report(fill))

    def _on_commission(self, trade, fill, report):
        self._emit("execution", self._report(fill))

    def _on_order_status(self, trade):
        self._emit("order_status", self._status(trade))

    def _on_error(self, req_id, code, message, contract):
        self._errors[req_id] = (code, message)
        if code == 200:
            self._errors["contract"] = message
        if code in ORDER_REFUSALS:
            # ib_insync logs these as warnings and leaves a new order pending, but IB never
            # works it: it ends here as IB's "Inactive" (rejected), with IB's reason. (An
            # order IB already works keeps working when a change of it is refused.)
            for trade in self.ib.trades():
                if trade.order.orderId == req_id and trade.orderStatus.status in UNACKNOWLEDGED:
                    refused = replace(self._status(trade), status="Inactive", message=message)
                    self._emit("order_status", refused)
