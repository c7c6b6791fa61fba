"""The paper account: orders, executions, positions and cash, all in Decimal.

It outlives client connections (like IB's own books do): a client that reconnects finds its
open orders, its completed ones and every execution with the same execIds. Matching is
deliberately simple: a market order fills at once at the simulated price, a limit order fills
at the simulated price whenever that price is at or through its limit, and with
``max_fill_size`` each price event fills at most that many shares of a resting order.

Stops and brackets work as at IB: a stop (STP) becomes a market order once the price trades
at or through it, a stop limit (STP LMT) a limit order, and a trailing stop (TRAIL, by an
amount in ``auxPrice`` or a ``trailingPercent``) moves its stop with the price in its favour
only, then triggers as a stop. An order placed with ``transmit`` off is kept and not worked
until an order of its group (its parent, or a child of it) is transmitted. A child (one with
a ``parentId``) waits while its parent has no fill, then works for the quantity its parent
has filled (the whole of it once the parent is filled); a parent cancelled before any fill
takes its children with it. Orders sharing an ``ocaGroup`` are one-cancels-all: with
``ocaType`` 1 (or unset) a fill of one cancels the others, with 2 or 3 each fill reduces the
others by its size (an order reduced to nothing is cancelled).
"""

import itertools
import logging
import os
import time as _time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from .contracts import Stock
from .protocol import EASTERN
from .sessions import SessionCalendar, is_session, session_close

logger = logging.getLogger(__name__)

ZERO = Decimal(0)
CENT = Decimal("0.01")

# IB's fixed pricing for US stocks: USD 0.005 a share, at least USD 1.00 an order, at most 1 %
# of the trade value. Applied per execution, as IB's paper account reports it.
PER_SHARE = Decimal("0.005")
MINIMUM = Decimal("1.00")
MAXIMUM_RATE = Decimal("0.01")

MARGIN_RATE = Decimal("0.25")  # Reg T-like margin on the gross position value

WORKING = ("PreSubmitted", "Submitted")
STAGED = "PendingSubmit"  # placed with transmit off: kept, not worked until its group goes
ORDER_TYPES = ("MKT", "LMT", "STP", "STP LMT", "TRAIL")
STOP_TYPES = ("STP", "STP LMT", "TRAIL")  # they wait for a trigger price before working
TIFS = ("DAY", "GTC", "IOC")


def commission_for(shares: Decimal, price: Decimal) -> Decimal:
    """IB's fixed-rate commission for one execution (see the constants above)."""
    fee = max(MINIMUM, shares * PER_SHARE)
    cap = shares * price * MAXIMUM_RATE
    return min(fee, cap).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def price_increment(price: Decimal) -> Decimal:
    """The price step of the US stocks traded here (IB's market rule for them): a cent from
    $1 up, a hundredth of a cent below."""
    return CENT if price >= 1 else Decimal("0.0001")


class OrderRejected(Exception):
    """A placeOrder/cancelOrder IB would refuse, with IB's error code and text."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class OrderRequest:
    """The parts of a placeOrder the simulation uses."""

    action: str
    quantity: Decimal
    order_type: str
    lmt_price: Decimal | None = None
    aux_price: Decimal | None = None
    tif: str = "DAY"
    account: str = ""
    order_ref: str = ""
    outside_rth: bool = False
    parent_id: int = 0
    transmit: bool = True
    what_if: bool = False
    oca_group: str = ""
    oca_type: int = 0
    trail_stop_price: Decimal | None = None
    trailing_percent: Decimal | None = None


@dataclass
class Order:
    perm_id: int
    client_id: int
    order_id: int
    contract: Stock
    action: str
    quantity: Decimal
    order_type: str
    lmt_price: Decimal | None
    aux_price: Decimal | None
    tif: str
    account: str
    order_ref: str
    outside_rth: bool
    placed_at: datetime
    status: str = "PendingSubmit"
    filled: Decimal = ZERO
    avg_fill_price: Decimal = ZERO
    last_fill_price: Decimal = ZERO
    triggered: bool = False
    completed_at: datetime | None = None
    completed_status: str = ""
    expires_at: datetime | None = None
    parent_id: int = 0
    parent_perm_id: int = 0
    oca_group: str = ""
    oca_type: int = 0
    trail_stop_price: Decimal | None = None
    trailing_percent: Decimal | None = None
    ordered: Decimal = ZERO  # the quantity asked for (a child works only its parent's fills)
    oca_filled: Decimal = ZERO  # shares its OCA siblings filled (ocaType 2 and 3 reduce by them)

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.filled

    @property
    def working(self) -> bool:
        return self.status in WORKING

    @property
    def side(self) -> int:
        return 1 if self.action == "BUY" else -1


@dataclass(frozen=True)
class Execution:
    """One fill, as execDetails and commissionReport describe it."""

    exec_id: str
    perm_id: int
    order_id: int
    client_id: int
    account: str
    contract: Stock
    side: str  # IB's words: BOT or SLD
    shares: Decimal
    price: Decimal
    time: datetime
    cum_qty: Decimal
    avg_price: Decimal
    order_ref: str
    exchange: str
    liquidity: int  # 1 added, 2 removed liquidity
    commission: Decimal
    realized_pnl: Decimal | None  # None for an opening execution (IB sends "unset")


@dataclass
class Holding:
    """A position; ``avg_cost`` includes commissions, as IB computes it."""

    contract: Stock
    quantity: Decimal = ZERO
    avg_cost: Decimal = ZERO
    realized_pnl: Decimal = ZERO


@dataclass(frozen=True)
class PositionView:
    """A position with its market valuation (the public, thread-safe snapshot)."""

    account: str
    symbol: str
    con_id: int
    quantity: Decimal
    avg_cost: Decimal
    market_price: Decimal
    market_value: Decimal
    unrealized_pnl: Decimal
    realized_pnl: Decimal


class BookListener:
    """What the server hears from the book (it turns these into messages)."""

    def order_changed(self, order: Order, *, open_order: bool) -> None: ...

    def executed(self, order: Order, execution: Execution) -> None: ...

    def commission(self, execution: Execution) -> None: ...

    def portfolio_changed(self, contract: Stock) -> None: ...


@dataclass
class Book:
    market: object  # Market: live prices
    calendar: SessionCalendar
    account: str = "DU0000001"
    cash: Decimal = Decimal("1000000")
    max_fill_size: Decimal | None = None
    listener: BookListener = field(default_factory=BookListener)

    def __post_init__(self):
        self.cash = Decimal(self.cash)
        if self.max_fill_size is not None:
            self.max_fill_size = Decimal(self.max_fill_size)
            if self.max_fill_size <= 0:
                raise ValueError("max_fill_size must be positive")
        self.orders: dict[int, Order] = {}  # permId -> order, in placement order
        self.by_key: dict[tuple[int, int], int] = {}  # (clientId, orderId) -> permId
        self.executions: list[Execution] = []
        self.holdings: dict[int, Holding] = {}
        self.realized = ZERO
        self.max_order_id = 0
        # execIds and permIds must not repeat across gateway runs: a product that stored the
        # fills of yesterday's run would take a repeated execId for a replay and drop a fill.
        started = int(_time.time())
        self._exec_prefix = f"0000{int.from_bytes(os.urandom(2), 'big'):04x}"
        self._exec_seq = itertools.count(started)
        self._perm_seq = itertools.count(100_000_000 + (started % 10_000_000) * 100)

    # --- ids ------------------------------------------------------------------------------
    @property
    def next_order_id(self) -> int:
        return self.max_order_id + 1

    def note_order_id(self, order_id: int) -> None:
        self.max_order_id = max(self.max_order_id, order_id)

    def _exec_id(self) -> str:
        return f"{self._exec_prefix}.{next(self._exec_seq) & 0xFFFFFFFF:08x}.01.01"

    # --- queries --------------------------------------------------------------------------
    def open_orders(self, client_id: int | None = None) -> list[Order]:
        return [
            o
            for o in self.orders.values()
            if o.working and (client_id is None or o.client_id == client_id)
        ]

    def completed_orders(self) -> list[Order]:
        return [o for o in self.orders.values() if o.status in ("Filled", "Cancelled")]

    def order(self, client_id: int, order_id: int) -> Order | None:
        perm_id = self.by_key.get((client_id, order_id))
        return self.orders.get(perm_id) if perm_id is not None else None

    def positions(self) -> list[PositionView]:
        views = []
        for holding in self.holdings.values():
            price = self.market.price(holding.contract.symbol)
            value = holding.quantity * price
            views.append(
                PositionView(
                    account=self.account,
                    symbol=holding.contract.symbol,
                    con_id=holding.contract.con_id,
                    quantity=holding.quantity,
                    avg_cost=holding.avg_cost,
                    market_price=price,
                    market_value=value,
                    unrealized_pnl=value - holding.quantity * holding.avg_cost,
                    realized_pnl=holding.realized_pnl,
                )
            )
        return views

    def account_values(self) -> dict[str, Decimal]:
        """IB's account tags, in USD. Margin is Reg T-like: 25 % of the gross position value."""
        positions = self.positions()
        stock_value = sum((p.market_value for p in positions), ZERO)
        gross = sum((abs(p.market_value) for p in positions), ZERO)
        unrealized = sum((p.unrealized_pnl for p in positions), ZERO)
        net = self.cash + stock_value
        margin = gross * MARGIN_RATE
        available = net - margin
        values = {
            "NetLiquidation": net,
            "TotalCashValue": self.cash,
            "SettledCash": self.cash,
            "CashBalance": self.cash,
            "AccruedCash": ZERO,
            "BuyingPower": max(available, ZERO) * 4,
            "AvailableFunds": available,
            "ExcessLiquidity": net - margin,
            "EquityWithLoanValue": net,
            "GrossPositionValue": gross,
            "StockMarketValue": stock_value,
            "InitMarginReq": margin,
            "MaintMarginReq": margin,
            "FullInitMarginReq": margin,
            "FullMaintMarginReq": margin,
            "FullAvailableFunds": available,
            "FullExcessLiquidity": net - margin,
            "UnrealizedPnL": unrealized,
            "RealizedPnL": self.realized,
        }
        return {k: v.quantize(CENT, rounding=ROUND_HALF_UP) for k, v in values.items()}

    # --- orders ---------------------------------------------------------------------------
    def place(
        self, client_id: int, order_id: int, contract: Stock, request: OrderRequest, now
    ) -> Order:
        """Accept a new order (or modify an open one) and match it against the price."""
        existing = self.order(client_id, order_id)
        if existing is not None:
            return self._modify(existing, request, now)
        self._validate(request)
        parent = None
        if request.parent_id:
            parent = self.order(client_id, request.parent_id)
            if parent is None or parent.status in ("Cancelled", "Inactive"):
                raise OrderRejected(
                    201, f"Order rejected - reason:The parent order {request.parent_id} is "
                    "not working"
                )  # fmt: skip
        self.note_order_id(order_id)
        order = Order(
            perm_id=next(self._perm_seq),
            client_id=client_id,
            order_id=order_id,
            contract=contract,
            action=request.action,
            quantity=request.quantity,
            order_type=request.order_type,
            lmt_price=request.lmt_price,
            aux_price=request.aux_price,
            tif=request.tif,
            account=self.account,
            order_ref=request.order_ref,
            outside_rth=request.outside_rth,
            placed_at=now,
            parent_id=request.parent_id,
            parent_perm_id=parent.perm_id if parent is not None else 0,
            oca_group=request.oca_group,
            oca_type=request.oca_type,
            trail_stop_price=request.trail_stop_price,
            trailing_percent=request.trailing_percent,
            ordered=request.quantity,
            status=STAGED,
        )
        if order.tif == "DAY":
            order.expires_at = self._day_end(now)
        if order.order_type == "TRAIL" and order.trail_stop_price is None:
            order.trail_stop_price = self._trail_stop(order, self.market.price(contract.symbol))
        self.orders[order.perm_id] = order
        self.by_key[(client_id, order_id)] = order.perm_id
        if request.transmit:
            for member in self._staged_group(parent or order):
                self._activate(member, now)
        return order

    def _staged_group(self, root: Order) -> list[Order]:
        """``root`` and its children still waiting for a transmit, in the order placed."""
        return [
            o
            for o in self.orders.values()
            if (o is root or o.parent_perm_id == root.perm_id) and o.status == STAGED
        ]

    def _activate(self, order: Order, now) -> None:
        """A transmitted order: working from now on (a child once its parent has a fill)."""
        order.status = "PreSubmitted"
        self.listener.order_changed(order, open_order=True)
        parent = self._parent(order)
        if parent is not None:
            if parent.filled == 0:
                return  # held until the parent fills, as IB holds a bracket's children
            self._size(order, now)
        self._match(order, self.market.price(order.contract.symbol), now, arriving=True)
        if order.working and order.tif == "IOC":
            self._finish(order, "Cancelled", now, "Cancelled by System (IOC)")
        elif order.status == "PreSubmitted" and order.order_type not in STOP_TYPES:
            order.status = "Submitted"
            self.listener.order_changed(order, open_order=True)

    def _parent(self, order: Order) -> Order | None:
        return self.orders.get(order.parent_perm_id) if order.parent_perm_id else None

    def _children(self, order: Order) -> list[Order]:
        return [o for o in self.orders.values() if o.parent_perm_id == order.perm_id]

    def _held(self, order: Order) -> bool:
        parent = self._parent(order)
        return parent is not None and parent.filled == 0

    def _size(self, order: Order, now) -> None:
        """A child works the quantity its parent has filled (all of it once the parent is
        filled), less what its OCA siblings filled; reduced to what it filled, it is done."""
        parent = self._parent(order)
        base = order.ordered
        if parent is not None and parent.status != "Filled":
            base = min(order.ordered, parent.filled)
        quantity = max(base - order.oca_filled, order.filled)
        if quantity == order.quantity:
            return
        order.quantity = quantity
        if order.remaining == 0 and order.working:
            self._finish(order, "Cancelled", now, "Cancelled by System (OCA)")
        elif order.working:
            self.listener.order_changed(order, open_order=True)

    def _trail_stop(self, order: Order, price: Decimal) -> Decimal:
        """Where a trailing stop stands for ``price``: below it for a sell, above for a buy,
        by the trailing amount (auxPrice) or percent."""
        if order.trailing_percent is not None:
            offset = price * order.trailing_percent / 100
        else:
            offset = order.aux_price
        stop = price + offset if order.side > 0 else price - offset
        return stop.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)

    def _validate(self, request: OrderRequest) -> None:
        if request.action not in ("BUY", "SELL"):
            raise OrderRejected(
                201, f"Order rejected - reason:Invalid action {request.action!r} (BUY or SELL)"
            )
        if request.order_type not in ORDER_TYPES:
            raise OrderRejected(387, "Unsupported order type for this exchange and security type.")
        if request.tif not in TIFS:
            raise OrderRejected(
                201, f"Order rejected - reason:Time in force {request.tif!r} is not supported"
            )
        if request.quantity is None or request.quantity <= 0:
            raise OrderRejected(434, "The order size cannot be zero.")
        if request.order_type in ("LMT", "STP LMT") and (
            request.lmt_price is None or request.lmt_price <= 0
        ):
            raise OrderRejected(201, "Order rejected - reason:A limit price is required")
        if request.order_type.startswith("STP") and (
            request.aux_price is None or request.aux_price <= 0
        ):
            raise OrderRejected(201, "Order rejected - reason:A stop price is required")
        if request.order_type == "TRAIL":
            percent = request.trailing_percent
            if percent is not None and not 0 < percent < 100:
                raise OrderRejected(
                    201, "Order rejected - reason:The trailing percent must be between 0 and 100"
                )
            if percent is None and (request.aux_price is None or request.aux_price <= 0):
                raise OrderRejected(
                    201, "Order rejected - reason:A trailing amount or percent is required"
                )
        stepped = [request.lmt_price]
        if request.order_type.startswith("STP"):
            stepped.append(request.aux_price)  # a trailing amount is an offset, not a price
        for price in stepped:
            if price is not None and price > 0 and price % price_increment(price) != 0:
                raise OrderRejected(
                    110, "The price does not conform to the minimum price variation for this "
                    "contract."
                )  # fmt: skip
        if request.account and request.account != self.account:
            raise OrderRejected(
                201, f"Order rejected - reason:The account code {request.account} is not valid"
            )

    def _modify(self, order: Order, request: OrderRequest, now) -> Order:
        if order.status == "Filled":
            raise OrderRejected(104, "Can't modify a filled order.")
        if not order.working:
            raise OrderRejected(
                10148, f"OrderId {order.order_id} that needs to be modified cannot be "
                f"modified, state: {order.status}."
            )  # fmt: skip
        self._validate(request)
        if request.quantity < order.filled:
            raise OrderRejected(
                201, "Order rejected - reason:The quantity is below what is already filled"
            )
        order.quantity = order.ordered = request.quantity
        order.lmt_price = request.lmt_price
        order.aux_price = request.aux_price
        order.order_type = request.order_type
        order.order_ref = request.order_ref or order.order_ref
        if request.tif != order.tif:
            order.tif = request.tif
            order.expires_at = self._day_end(now) if order.tif == "DAY" else None
        self.listener.order_changed(order, open_order=True)
        self._match(order, self.market.price(order.contract.symbol), now, arriving=True)
        if order.working and order.tif == "IOC":
            self._finish(order, "Cancelled", now, "Cancelled by System (IOC)")
        return order

    def cancel(self, client_id: int, order_id: int, now) -> Order:
        order = self.order(client_id, order_id)
        if order is None:
            raise OrderRejected(
                10147, f"OrderId {order_id} that needs to be cancelled is not found."
            )
        if not order.working and order.status != STAGED:
            raise OrderRejected(
                10148, f"OrderId {order_id} that needs to be cancelled cannot be cancelled, "
                f"state: {order.status}."
            )  # fmt: skip
        self._finish(order, "Cancelled", now, "Cancelled by Trader")
        return order

    def cancel_all(self, now) -> list[Order]:
        cancelled = []
        for order in self.open_orders():
            if order.working:  # a parent's cancel may have taken its children already
                self._finish(order, "Cancelled", now, "Cancelled by Trader")
                cancelled.append(order)
        return cancelled

    def expire(self, now) -> list[Order]:
        """DAY orders end with their session (16:00 US/Eastern)."""
        expired = []
        for order in self.open_orders():
            if order.working and order.expires_at is not None and now >= order.expires_at:
                self._finish(order, "Cancelled", now, "Cancelled by System (expired)")
                expired.append(order)
        return expired

    def _day_end(self, now) -> datetime:
        local = now.astimezone(EASTERN)
        day = local.date()
        if not is_session(day) or local >= session_close(day):
            day = self.calendar.next_session(day)
        return session_close(day)

    def _finish(self, order: Order, status: str, now, why: str) -> None:
        order.status = status
        order.completed_at = now
        order.completed_status = why
        self.listener.order_changed(order, open_order=False)
        if status == "Cancelled" and order.filled == 0:
            # A parent that never filled takes its children with it (IB's bracket).
            for child in self._children(order):
                if child.working or child.status == STAGED:
                    self._finish(child, "Cancelled", now, "Cancelled by System (parent)")

    # --- matching -------------------------------------------------------------------------
    def on_price(self, symbol: str, price: Decimal, now) -> None:
        """A price event: every working order of ``symbol`` gets one chance to fill."""
        for order in list(self.orders.values()):
            if order.working and order.contract.symbol == symbol:
                self._match(order, price, now, arriving=False)

    def _ratchet(self, order: Order, price: Decimal) -> None:
        """A trailing stop follows the price in its favour, never back."""
        stop = self._trail_stop(order, price)
        current = order.trail_stop_price
        if current is None or (stop < current if order.side > 0 else stop > current):
            order.trail_stop_price = stop
            self.listener.order_changed(order, open_order=True)

    def _marketable(self, order: Order, price: Decimal) -> bool:
        kind = order.order_type
        if kind == "TRAIL" and not order.triggered:
            self._ratchet(order, price)
        if kind in STOP_TYPES and not order.triggered:
            stop = order.trail_stop_price if kind == "TRAIL" else order.aux_price
            if (order.side > 0 and price >= stop) or (order.side < 0 and price <= stop):
                order.triggered = True
                if order.status == "PreSubmitted":
                    order.status = "Submitted"
                    self.listener.order_changed(order, open_order=True)
            else:
                return False
        if kind in ("MKT", "STP", "TRAIL"):
            return True
        limit = order.lmt_price
        return price <= limit if order.side > 0 else price >= limit

    def _match(self, order: Order, price: Decimal, now, *, arriving: bool) -> None:
        if not order.working or self._held(order) or not self._marketable(order, price):
            return
        sweeping = order.order_type in ("MKT", "STP", "TRAIL")
        liquidity = 2 if (arriving or sweeping) else 1
        while order.remaining > 0 and order.working:
            size = order.remaining
            if self.max_fill_size is not None:
                size = min(size, self.max_fill_size)
            self._execute(order, size, price, now, liquidity)
            if not sweeping:
                break  # a resting limit order gets one fill per price event

    def _execute(self, order: Order, shares: Decimal, price: Decimal, now, liquidity) -> None:
        commission = commission_for(shares, price)
        realized = self._apply_to_position(order, shares, price, commission)
        total = order.avg_fill_price * order.filled + price * shares
        order.filled += shares
        order.avg_fill_price = total / order.filled
        order.last_fill_price = price
        execution = Execution(
            exec_id=self._exec_id(),
            perm_id=order.perm_id,
            order_id=order.order_id,
            client_id=order.client_id,
            account=self.account,
            contract=order.contract,
            side="BOT" if order.side > 0 else "SLD",
            shares=shares,
            price=price,
            time=now,
            cum_qty=order.filled,
            avg_price=order.avg_fill_price,
            order_ref=order.order_ref,
            exchange=order.contract.execution_venue,
            liquidity=liquidity,
            commission=commission,
            realized_pnl=realized,
        )
        self.executions.append(execution)
        logger.info(
            "fill %s %s %s %s @ %s (order %s/%s, %s)",
            execution.exec_id, execution.side, shares, order.contract.symbol, price,
            order.client_id, order.order_id, "filled" if order.remaining == 0 else "partial",
        )  # fmt: skip
        self.listener.executed(order, execution)
        if order.remaining == 0:
            order.status = "Filled"
            order.completed_at = now
            order.completed_status = "Filled"
            self.listener.order_changed(order, open_order=True)  # TWS re-sends the order too
        else:
            order.status = "Submitted"
            self.listener.order_changed(order, open_order=False)
        self.listener.commission(execution)
        self.listener.portfolio_changed(order.contract)
        for child in self._children(order):  # a bracket's children work the parent's fills
            if child.working:
                self._size(child, now)
                self._match(child, price, now, arriving=True)
                if child.status == "PreSubmitted" and child.order_type not in STOP_TYPES:
                    child.status = "Submitted"
                    self.listener.order_changed(child, open_order=True)
        if order.oca_group or order.parent_perm_id:
            self._one_cancels_all(order, shares, now)

    def _one_cancels_all(self, order: Order, shares: Decimal, now) -> None:
        """A fill of one order of an OCA group cancels or reduces the others. A bracket's
        children are one group even without a name: each fill reduces the other (IB)."""
        if order.oca_group:
            siblings = [o for o in self.orders.values() if o.oca_group == order.oca_group]
            reduce = order.oca_type in (2, 3)
        else:
            siblings = self._children(self._parent(order))
            reduce = True
        for sibling in siblings:
            if sibling is order or not (sibling.working or sibling.status == STAGED):
                continue
            if reduce:
                sibling.oca_filled += shares
                self._size(sibling, now)
            else:
                self._finish(sibling, "Cancelled", now, "Cancelled by System (OCA)")

    def _apply_to_position(self, order, shares, price, commission) -> Decimal | None:
        """Update position and cash; return the realized P&L if the fill closed anything."""
        holding = self.holdings.get(order.contract.con_id)
        if holding is None:
            holding = self.holdings[order.contract.con_id] = Holding(order.contract)
        side = order.side
        self.cash -= side * shares * price + commission
        q0, a0 = holding.quantity, holding.avg_cost
        if q0 == 0 or (q0 > 0) == (side > 0):
            # Opening or adding: the commission raises a long's cost, lowers a short's proceeds.
            holding.avg_cost = (abs(q0) * a0 + shares * price + side * commission) / (
                abs(q0) + shares
            )
            holding.quantity = q0 + side * shares
            return None
        closing = min(shares, abs(q0))
        opening = shares - closing
        closing_commission = commission * closing / shares
        if q0 > 0:
            realized = (price - a0) * closing - closing_commission
        else:
            realized = (a0 - price) * closing - closing_commission
        holding.quantity = q0 + side * shares
        holding.realized_pnl += realized
        self.realized += realized
        if opening > 0:
            holding.avg_cost = price + side * (commission - closing_commission) / opening
        elif holding.quantity == 0:
            holding.avg_cost = ZERO
        return realized
