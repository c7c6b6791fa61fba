"""What the product knows of a broker: a small Protocol and plain, Decimal-valued records."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol


class BrokerError(Exception):
    """A request the broker refused or did not answer in time; the message says which."""


class BrokerUnavailable(BrokerError):
    """The gateway cannot be reached; the message names host and port."""


class ClientIdInUse(BrokerUnavailable):
    """IB refused the connection's client id: another connection holds it (error 326)."""


@dataclass(frozen=True)
class ContractInfo:
    conid: int
    symbol: str
    exchange: str = "SMART"
    currency: str = "USD"
    sec_type: str = "STK"
    primary_exchange: str = ""


@dataclass(frozen=True)
class SymbolMatch:
    """One answer of IB's symbol search (reqMatchingSymbols): a contract and its name."""

    conid: int
    symbol: str
    description: str = ""
    sec_type: str = "STK"
    currency: str = "USD"
    primary_exchange: str = ""


@dataclass(frozen=True)
class Bar:
    time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True)
class OrderTicket:
    """One order to send: IB's order type with its prices (``price`` the limit, ``stop_price``
    IB's auxPrice, a trailing stop's amount or percent), and our id as ``order_ref``."""

    side: str
    quantity: Decimal
    order_type: str
    order_ref: str
    tif: str = "DAY"
    price: Decimal | None = None
    stop_price: Decimal | None = None
    trailing_amount: Decimal | None = None
    trailing_percent: Decimal | None = None
    oca_group: str = ""  # one-cancels-all with the orders of this group (IB's ocaGroup)
    oca_type: int = 0


@dataclass(frozen=True)
class BrokerOrderStatus:
    broker_order_id: int
    order_ref: str
    status: str  # IB's words: Submitted, PreSubmitted, Filled, Cancelled, Inactive, ...
    filled: Decimal
    remaining: Decimal
    avg_fill_price: Decimal | None
    message: str = ""


@dataclass(frozen=True)
class ExecutionReport:
    exec_id: str
    broker_order_id: int
    order_ref: str
    conid: int
    side: str  # BUY or SELL
    quantity: Decimal
    price: Decimal
    time: datetime
    commission: Decimal | None = None


@dataclass(frozen=True)
class PriceReport:
    """IB's price of a contract at a moment (the last trade, else the bid/ask midpoint)."""

    conid: int
    price: Decimal
    time: datetime
    delayed: bool = False


@dataclass(frozen=True)
class AccountSummary:
    """The account's money as IB reports it, in the account's base currency."""

    account: str
    currency: str
    net_liquidation: Decimal
    cash: Decimal
    buying_power: Decimal
    available_funds: Decimal
    time: datetime


class BrokerListener(Protocol):
    def execution(self, report: ExecutionReport) -> None: ...

    def order_status(self, status: BrokerOrderStatus) -> None: ...

    def price(self, report: PriceReport) -> None: ...


class Broker(Protocol):
    """Everything the product asks of Interactive Brokers (or the loopback gateway)."""

    host: str
    port: int

    def account(self) -> str: ...

    def resolve(
        self, *, symbol: str, exchange: str, currency: str, sec_type: str
    ) -> ContractInfo: ...

    def matching_symbols(self, *, pattern: str) -> list[SymbolMatch]: ...

    def historical_bars(
        self,
        *,
        contract: ContractInfo,
        period: str,
        bar: str,
        end: datetime | None = None,
        on_wait=None,
    ) -> list[Bar]: ...

    def place_order(self, *, contract: ContractInfo, ticket: OrderTicket) -> int: ...

    def place_bracket(
        self,
        *,
        contract: ContractInfo,
        entry: OrderTicket,
        children: list[OrderTicket],
        oca_group: str,
    ) -> list[int]: ...

    def cancel_order(self, *, broker_order_id: int) -> None: ...

    def cancel_all(self) -> None: ...

    def order_statuses(self) -> list[BrokerOrderStatus]: ...

    def executions(self) -> list[ExecutionReport]: ...

    def prices(self, *, contracts: list[ContractInfo]) -> dict[int, PriceReport]: ...

    def stream_prices(self, *, contracts: list[ContractInfo]) -> None: ...

    def account_summary(self) -> AccountSummary: ...

    def listen(self, listener: BrokerListener) -> None: ...

    def wait(self, seconds: float) -> None: ...
