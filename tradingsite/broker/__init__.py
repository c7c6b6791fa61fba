"""The door to Interactive Brokers.

Services and the workflow engine use ``get_broker()`` and the plain dataclasses of
``types``; only ``ib.py`` imports ib_insync, so moving to its maintained fork ``ib_async``
is a one-line change there.
"""

from .connection import client_role, get_broker, on_connect, reset_broker
from .types import (
    Bar,
    Broker,
    BrokerError,
    BrokerOrderStatus,
    BrokerUnavailable,
    ClientIdInUse,
    ContractInfo,
    ExecutionReport,
)

__all__ = [
    "Bar",
    "Broker",
    "BrokerError",
    "BrokerOrderStatus",
    "BrokerUnavailable",
    "ClientIdInUse",
    "ContractInfo",
    "ExecutionReport",
    "client_role",
    "get_broker",
    "on_connect",
    "reset_broker",
]
