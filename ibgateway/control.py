"""Moving a running loopback gateway's market from outside it (``manage.py ibgateway_price``).

IB has no such request; the gateway answers one of its own (``In.SIMULATE_PRICE``) on its API
port, after the handshake and without ``startApi``, so it takes no client id from the
programs connected to it. Resting orders (limits, stops, trailing stops, brackets) react to the
move before the answer comes back, as they do to ``LoopbackGateway.set_price``.
"""

import socket
import struct
from decimal import Decimal

from .protocol import (
    HANDSHAKE_PREFIX,
    MAX_SERVER_VERSION,
    MIN_SERVER_VERSION,
    In,
    Out,
    decode,
    encode,
    frame,
)


class ControlError(Exception):
    """The gateway could not be reached, or refused the request (its words)."""


def _read_frame(connection):
    header = _read_exactly(connection, 4)
    (size,) = struct.unpack(">I", header)
    return decode(_read_exactly(connection, size))


def _read_exactly(connection, size):
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise ControlError("the gateway closed the connection")
        data += chunk
    return data


def set_price(*, host="127.0.0.1", port=4002, symbol, price, timeout=10.0) -> Decimal:
    """Set ``symbol``'s simulated price on the gateway at ``host:port``; returns the price it
    now stands at (on the cent grid)."""
    try:
        connection = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise ControlError(
            f"cannot reach a loopback gateway at {host}:{port} ({exc.strerror or exc})"
        ) from None
    with connection:
        try:
            versions = f"v{MIN_SERVER_VERSION}..{MAX_SERVER_VERSION}".encode()
            connection.sendall(HANDSHAKE_PREFIX + frame(versions))
            _read_frame(connection)  # the server's version and time
            connection.sendall(encode(In.SIMULATE_PRICE, 1, symbol, price))
            while True:
                fields = _read_frame(connection)
                if fields and fields[0] == str(int(Out.SIMULATED_PRICE)):
                    return Decimal(fields[2]).quantize(Decimal("0.01"))  # the cent grid
                if fields and fields[0] == str(int(Out.ERR_MSG)):
                    raise ControlError(f"the gateway refused: error {fields[3]}, {fields[4]}")
        except TimeoutError:
            raise ControlError(f"the gateway at {host}:{port} did not answer") from None
        except OSError as exc:
            raise ControlError(f"lost the gateway at {host}:{port} ({exc})") from None
