"""The door to Interactive Brokers.

Services and the workflow engine use ``get_broker()`` and the plain dataclasses of
``types``; only ``ib.py`` imports ib_insync, so moving to its maintained fork ``ib_async``
is a one-line change there.
"""

from .connection import broker_connect, client_role, get_broker, on_connect, reset_broker
from .types import (
    AccountSummary,
    Bar,
    Broker,
    BrokerError,
    BrokerOrderStatus,
    BrokerUnavailable,
    ClientIdInUse,
    ContractInfo,
    ExecutionReport,
    OrderTicket,
    PriceReport,
    SymbolMatch,
)

__all__ = [
    "AccountSummary",
    "Bar",
    "Broker",
    "BrokerError",
    "BrokerOrderStatus",
    "BrokerUnavailable",
    "ClientIdInUse",
    "ContractInfo",
    "ExecutionReport",
    "OrderTicket",
    "PriceReport",
    "SymbolMatch",
    "broker_connect",
    "client_role",
    "get_broker",
    "on_connect",
    "reset_broker",
]
