"""The simulator's fixtures: a gateway on a fixed clock (a Friday after the close, so history
does not move while a test runs) and a client connected to it. No database."""

import pytest

from .support import connect, start_gateway


@pytest.fixture
def gateway():
    server = start_gateway(seed=7)
    yield server
    server.stop()


@pytest.fixture
def ib(gateway):
    client = connect(gateway)
    yield client
    client.disconnect()
