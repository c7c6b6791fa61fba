"""IB client ids leased from IBKR_CLIENT_ID_RANGE through Redis: no two processes share one,
a crashed process's id comes back after its lease's expiry (not before), and every way a
lease cannot be had is said at start, before anything connects."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from tradingsite.broker import get_broker, reset_broker
from tradingsite.broker.leases import (
    ClientIdUnavailable,
    RedisLeases,
    client_id_range,
    current_lease,
    lease_client_id,
    release_client_id,
    renew_now,
)

ROOT = Path(__file__).resolve().parents[2]
HOLD = """
import os, sys, time
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingsite.settings")
django.setup()
from tradingsite.broker import get_broker
print(get_broker().client_id, flush=True)
if sys.argv[1] == "hold":
    time.sleep(600)
"""


def client_ids(gateway):
    return sorted(s.client_id for s in gateway.server.sessions if s.ready)


def settled_ids(gateway, expected, timeout=10):
    """The gateway's clients once they are ``expected`` (a socket closed by one side is seen
    by the other a moment later), or as they are at the timeout."""
    deadline = time.monotonic() + timeout
    while client_ids(gateway) != expected and time.monotonic() < deadline:
        time.sleep(0.02)
    return client_ids(gateway)


def holder_env(settings, **extra):
    return {
        **os.environ, "TESTING": "true", "REDIS_URL": settings.REDIS_URL,
        "IBKR_HOST": "127.0.0.1", "IBKR_PORT": str(settings.IBKR_PORT),
        "IBKR_MASTER_CLIENT_ID": str(settings.IBKR_MASTER_CLIENT_ID),
        "IBKR_CLIENT_ID_RANGE": settings.IBKR_CLIENT_ID_RANGE, **extra,
    }  # fmt: skip


def start_holder(settings, mode="hold", **extra):
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, mode], cwd=ROOT, env=holder_env(settings, **extra),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    line = process.stdout.readline()
    if not line.strip():
        process.kill()
        pytest.fail(f"the holder did not connect: {process.stderr.read()[-2000:]}")
    return process, int(line)


def lease_key(settings, client_id):
    return f"tradingsite:ib-client-id:127.0.0.1:{settings.IBKR_PORT}:{client_id}"


@pytest.fixture
def server(settings):
    return redis.Redis.from_url(settings.REDIS_URL)


@pytest.mark.parametrize("text", ["", "abc", "5", "9-1", "1-", "1..9", "-3-4", "1-99999999999"])
def test_a_malformed_range_is_refused_by_name(text):
    with pytest.raises(Exception, match="IBKR_CLIENT_ID_RANGE must be FIRST-LAST") as refused:
        client_id_range(text)
    assert repr(text) in str(refused.value)


def test_a_malformed_range_stops_every_process_at_start(settings):
    done = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "TESTING": "true", "IBKR_CLIENT_ID_RANGE": "ten-twenty"},
    )  # fmt: skip
    assert done.returncode != 0
    assert "IBKR_CLIENT_ID_RANGE must be FIRST-LAST" in done.stderr
    assert "'ten-twenty'" in done.stderr


def test_processes_on_one_gateway_each_lease_their_own_id(gateway, settings, server):
    settings.IBKR_CLIENT_ID_RANGE = "20-29"
    settings.IBKR_MASTER_CLIENT_ID = 21  # inside the range: never leased
    mine = get_broker().client_id
    first, first_id = start_holder(settings)
    second, second_id = start_holder(settings)
    try:
        assert sorted([mine, first_id, second_id]) == [20, 22, 23]
        assert client_ids(gateway) == [20, 22, 23]  # all three connected, none refused
        holder = server.get(lease_key(settings, first_id)).decode()
        assert holder.startswith(f"web pid {first.pid} on ")
        assert get_broker().resolve(symbol="AAPL").conid == 265598
    finally:
        for process in (first, second):
            process.terminate()
            process.wait(timeout=10)


def test_an_exiting_process_gives_its_id_back_at_once(gateway, settings, server):
    settings.IBKR_CLIENT_ID_RANGE = "30-39"
    process, client_id = start_holder(settings, mode="exit")
    assert process.wait(timeout=20) == 0
    assert client_id == 30
    assert server.get(lease_key(settings, 30)) is None
    assert get_broker().client_id == 30


def test_a_killed_process_id_is_reused_after_its_lease_expires_not_before(
    gateway, settings, server
):
    settings.IBKR_CLIENT_ID_RANGE = "40-49"
    # A short lease: its heartbeat renews it every 0.5 s while the process lives.
    process, killed_id = start_holder(settings, IBKR_CLIENT_ID_LEASE_SECONDS="1.5")
    assert killed_id == 40
    key = lease_key(settings, killed_id)
    # Alive for more than two lease lives: the heartbeat kept it.
    deadline = time.monotonic() + 3.5
    while time.monotonic() < deadline:
        assert server.get(key) is not None
        time.sleep(0.25)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    assert settled_ids(gateway, []) == []  # IB saw the socket close...
    assert server.get(key).decode().startswith(f"web pid {process.pid} ")  # ...the lease stays
    # Before the expiry, a new process gets another id.
    assert get_broker().client_id == 41
    reset_broker()
    # Once the dead process's lease has expired (it is renewed by nobody), its id is free.
    deadline = time.monotonic() + 10
    while server.get(key) is not None:
        assert time.monotonic() < deadline, "the dead process's lease never expired"
        time.sleep(0.1)
    assert get_broker().client_id == 40


def test_the_heartbeat_renews_the_lease_and_retakes_one_redis_lost(gateway, settings, server):
    settings.IBKR_CLIENT_ID_RANGE = "50-59"
    settings.IBKR_CLIENT_ID_LEASE_SECONDS = 60
    client_id = get_broker().client_id
    key = lease_key(settings, client_id)
    server.pexpire(key, 5000)
    assert renew_now()
    assert server.pttl(key) > 55000
    server.delete(key)  # Redis restarted without persistence
    assert renew_now()
    assert server.get(key).decode() == current_lease().owner
    server.set(key, "web pid 1 on elsewhere #00000000")  # someone else has it now
    assert not renew_now()
    assert current_lease().lost
    # The next request leases a new id and connects under it; the old connection is closed.
    assert get_broker().client_id == 51
    assert settled_ids(gateway, [51]) == [51]


def test_an_exhausted_range_is_said_naming_it_and_nothing_connects(gateway, settings, server):
    settings.IBKR_CLIENT_ID_RANGE = "60-62"
    settings.IBKR_MASTER_CLIENT_ID = 62
    store = RedisLeases(settings.REDIS_URL, 60)
    for owner in ("worker pid 7 on hostA #1", "web pid 8 on hostB #2"):
        lease, _ = store.acquire(
            gateway=f"127.0.0.1:{settings.IBKR_PORT}", owner=owner, first=60, last=62, skip=[62]
        )
        assert lease is not None
    with pytest.raises(ClientIdUnavailable) as refused:
        get_broker()
    message = str(refused.value)
    assert f"No free IB client id for IB Gateway/TWS at 127.0.0.1:{settings.IBKR_PORT} " in message
    assert (
        "in IBKR_CLIENT_ID_RANGE 60-62: leased by other processes (60: worker pid 7 on hostA; "
        "61: web pid 8 on hostB); not leased: 62 (the broker listener's IBKR_MASTER_CLIENT_ID"
    ) in message
    assert client_ids(gateway) == []


def test_redis_down_at_lease_time_is_said_and_nothing_connects(gateway, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    release_client_id()
    with pytest.raises(ClientIdUnavailable) as refused:
        lease_client_id()
    assert "Cannot lease an IB client id: Redis at redis://127.0.0.1:1/0 does not answer" in str(
        refused.value
    )
    with pytest.raises(ClientIdUnavailable):
        get_broker()
    assert client_ids(gateway) == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "env, message",
    [
        ({"IBKR_CLIENT_ID_RANGE": "8-8", "IBKR_MASTER_CLIENT_ID": "8"},
         "No free IB client id for IB Gateway/TWS at 127.0.0.1:{port} in IBKR_CLIENT_ID_RANGE 8-8"),
        ({"REDIS_URL": "redis://127.0.0.1:1/0", "CELERY_BROKER_URL": "memory://"},
         "Cannot lease an IB client id: Redis at redis://127.0.0.1:1/0 does not answer"),
    ],
)  # fmt: skip
def test_a_worker_that_cannot_lease_refuses_to_start_saying_why(gateway, settings, env, message):
    from django.db import connection

    db = connection.settings_dict
    done = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "tradingsite", "worker", "--pool=solo",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env=holder_env(settings, DATABASE_URL=(
            f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"), **env),
    )  # fmt: skip
    assert done.returncode == 1
    assert "Refusing to start the worker: " + message.format(port=settings.IBKR_PORT) in done.stderr
    assert client_ids(gateway) == []


@pytest.mark.django_db(transaction=True)
def test_a_prefork_worker_leases_one_id_per_pool_process_none_for_its_main_process(
    gateway, settings, server
):
    from django.db import connection

    settings.IBKR_CLIENT_ID_RANGE = "70-79"
    db = connection.settings_dict
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tradingsite", "worker", "--pool=prefork",
         "--concurrency", "2", "-Q", "prefork-test", "--without-gossip", "--without-mingle",
         "--without-heartbeat"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env=holder_env(settings, DATABASE_URL=(
            f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}")),
    )  # fmt: skip
    keys = f"tradingsite:ib-client-id:127.0.0.1:{settings.IBKR_PORT}:*"
    try:
        deadline = time.monotonic() + 60
        while len(client_ids(gateway)) < 2:
            assert worker.poll() is None, worker.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "the pool processes did not connect"
            time.sleep(0.2)
        time.sleep(1)  # what the main process would lease, it would have by now
        assert client_ids(gateway) == [70, 71]
        holders = sorted(server.get(key).decode() for key in server.keys(keys))
        assert len(holders) == 2  # exactly the two pool processes: none for the main one
        pids = {int(holder.split()[2]) for holder in holders}
        assert len(pids) == 2 and worker.pid not in pids
        for pid in pids:  # each a child of the worker's main process
            parent = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
            assert int(parent) == worker.pid
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert server.keys(keys) == []  # each pool process gave its id back
    assert settled_ids(gateway, []) == []


@pytest.mark.django_db(transaction=True)
def test_a_prefork_worker_whose_pool_cannot_lease_an_id_each_refuses_to_start(gateway, settings):
    from django.db import connection

    db = connection.settings_dict
    done = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "tradingsite", "worker", "--pool=prefork",
         "--concurrency", "3", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env=holder_env(settings, IBKR_CLIENT_ID_RANGE="80-82", IBKR_MASTER_CLIENT_ID="81",
                       DATABASE_URL=(
            f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}")),
    )  # fmt: skip
    assert done.returncode == 1
    assert (
        f"Refusing to start the worker: Only 2 free IB client ids for 3 processes for IB "
        f"Gateway/TWS at 127.0.0.1:{settings.IBKR_PORT} in IBKR_CLIENT_ID_RANGE 80-82: not "
        "leased: 81 (the broker listener's IBKR_MASTER_CLIENT_ID"
    ) in done.stderr
    assert client_ids(gateway) == []
