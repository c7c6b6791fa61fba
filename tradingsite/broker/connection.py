"""One broker connection per process, reconnected with backoff when it drops."""

import os
import threading
import time

from django.conf import settings

from . import leases
from .loop import ensure_event_loop
from .types import BrokerUnavailable, ClientIdInUse

_lock = threading.Lock()
_broker = None
_pid = None


def _connect(factory, attempts, backoff):
    last = None
    for attempt in range(attempts):
        if attempt:
            time.sleep(min(backoff * 2 ** (attempt - 1), 30))
        try:
            return factory().connect()
        except ClientIdInUse:
            raise  # waiting would not free it: say so at once
        except BrokerUnavailable as exc:
            last = exc
    raise last


# IB takes one connection per client id: each process leases its own from
# IBKR_CLIENT_ID_RANGE (leases.py). ib_listen connects as IBKR_MASTER_CLIENT_ID (a connection of
# its own, broker_connect), which no lease takes.
ROLES = ("web", "command", "worker")


def client_role(role):
    """Say which kind of process this is (``ROLES``; its leases name it), before it
    connects; returns the kind it was."""
    if role not in ROLES:
        raise ValueError(f"{role!r} is not one of {', '.join(ROLES)}")
    return leases.set_role(role)


def _connect_leased():
    """A connection under this process's leased client id. An id IB says is in use (a
    client outside the site, e.g. TWS's own) is skipped for another of the range."""
    refused = set()
    while True:
        client_id = leases.lease_client_id(skip=refused)
        try:
            return broker_connect(client_id=client_id)
        except ClientIdInUse:
            refused.add(client_id)
            leases.release_client_id()
            first, last = leases.client_id_range(settings.IBKR_CLIENT_ID_RANGE)
            if len(refused) >= min(last - first + 1, 10):
                raise


def get_broker():
    """The connected broker of this process (a forked worker gets its own connection).

    The connection is checked first (``IBBroker.alive``: its socket, and a heartbeat when it
    was idle): one that died since it was last used (a gateway restart) is replaced by a new
    one here, so a restart costs no request at all when the gateway is back, and a clear
    BrokerUnavailable when it is not."""
    global _broker, _pid
    ensure_event_loop()
    with _lock:
        lease = leases.current_lease()
        leased = (
            lease is not None
            and not lease.lost
            and lease.gateway == leases.gateway_name()
            and lease.client_id == getattr(_broker, "client_id", None)
        )
        if _broker is not None and _pid == os.getpid() and leased and _broker.alive():
            return _broker
        if _broker is not None and _pid == os.getpid():
            _broker.disconnect()
        _broker = _connect_leased()
        _pid = os.getpid()
        return _broker


def broker_connect(*, client_id):
    """A new connection of its own (retried with backoff) with the settings' gateway, with
    the ``on_connect`` hooks run on it. ``get_broker`` keeps one per process; a process that
    needs another (ib_listen's, as the master client) makes it here."""
    ensure_event_loop()
    # Imported after the loop is set: ib_insync (through eventkit) needs one in this thread
    # at import, which a thread where asyncio.run has finished does not have.
    from .ib import IBBroker

    broker = _connect(
        lambda: IBBroker(
            host=settings.IBKR_HOST or "127.0.0.1",
            port=settings.IBKR_PORT,
            client_id=client_id,
            timeout=settings.IBKR_REQUEST_TIMEOUT,
            pacing_clock=settings.IBKR_PACING_CLOCK,
            market_data_type=settings.IBKR_MARKET_DATA_TYPE,
            heartbeat_seconds=settings.IBKR_HEARTBEAT_SECONDS,
            heartbeat_timeout=settings.IBKR_HEARTBEAT_TIMEOUT,
            ack_timeout=settings.IBKR_ORDER_ACK_TIMEOUT,
            pacing_redis_url=settings.REDIS_URL,
        ),
        attempts=settings.IBKR_CONNECT_ATTEMPTS,
        backoff=settings.IBKR_RECONNECT_BACKOFF,
    )
    for hook in _on_connect:
        hook(broker)
    return broker


_on_connect = []


def on_connect(hook):
    """Register ``hook(broker)`` to run on every new connection (e.g. attach listeners)."""
    if hook not in _on_connect:
        _on_connect.append(hook)
    return hook


def reset_broker():
    """Drop this process's connection and give its client id back (tests; settings changed;
    the process ends)."""
    global _broker, _pid
    with _lock:
        if _broker is not None and _pid == os.getpid():
            _broker.disconnect()
        _broker = _pid = None
        leases.release_client_id()
