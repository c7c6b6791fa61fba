"""A loopback IB Gateway: the TWS API wire protocol over a real socket, with a simulated
market and paper account behind it, for demos, tests and paper trading without an account.

The unmodified ib_insync client (and so the product's broker layer) connects to it as to a
real IB Gateway::

    with LoopbackGateway(seed=7) as gateway:
        ib = IB().connect("127.0.0.1", gateway.port, clientId=1)
        ib.qualifyContracts(Stock("AAPL", "SMART", "USD"))
        gateway.set_price("AAPL", 180)  # resting limit orders fill now

``python manage.py ibgateway --port 4002`` runs one until interrupted.
"""

from .book import (
    Execution,
    Order,
    OrderRequest,
    PositionView,
    commission_for,
)
from .contracts import STOCKS, ContractRegistry, derived_con_id
from .gateway import LoopbackGateway, serve
from .market import Bar, HistoryError, Market
from .protocol import MAX_SERVER_VERSION, MIN_SERVER_VERSION

__all__ = [
    "MAX_SERVER_VERSION",
    "MIN_SERVER_VERSION",
    "STOCKS",
    "Bar",
    "ContractRegistry",
    "Execution",
    "HistoryError",
    "LoopbackGateway",
    "Market",
    "Order",
    "OrderRequest",
    "PositionView",
    "commission_for",
    "derived_con_id",
    "serve",
]
