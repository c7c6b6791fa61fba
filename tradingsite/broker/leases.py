"""IB client ids leased, not derived: each process that talks to IB holds one of its own.

IB takes one connection per client id, for the whole gateway. The site's processes (web
workers, Celery workers, commands, on any number of hosts) each lease a free id of
``IBKR_CLIENT_ID_RANGE`` for the gateway they talk to, keep it while they live and give it
back when they exit:

- With Redis (``REDIS_URL``), a lease is a key per (gateway, id) set if absent with an expiry
  (``IBKR_CLIENT_ID_LEASE_SECONDS``) that a heartbeat thread renews every third of it. A
  process that exits releases it; one that crashed (SIGKILL, a lost host) stops renewing, and
  its id is free again once the expiry passes, not before.
- Without Redis (the embedded default, one machine), a lease is an exclusive ``flock`` on a
  file per id under ``var/client-ids/``: the kernel releases it when the process ends, however
  it ends.

The broker listener (``ib_listen``) is not leased: it keeps its fixed master id
(``IBKR_MASTER_CLIENT_ID``), which no lease ever takes.
"""

import atexit
import fcntl
import logging
import os
import re
import socket
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import redis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .types import BrokerUnavailable

logger = logging.getLogger(__name__)

RANGE = re.compile(r"\s*(\d{1,9})\s*-\s*(\d{1,9})\s*")


def client_id_range(text):
    """``"1-99"`` as ``(1, 99)``; anything else is ImproperlyConfigured, naming the value."""
    match = RANGE.fullmatch(text or "")
    first, last = (int(match[1]), int(match[2])) if match else (None, None)
    if match is None or first > last or last > 2**31 - 1:
        raise ImproperlyConfigured(
            f"IBKR_CLIENT_ID_RANGE must be FIRST-LAST, two whole numbers with FIRST <= LAST "
            f"(e.g. 1-99), not {text!r}."
        )
    return first, last


class ClientIdUnavailable(BrokerUnavailable):
    """No client id could be leased: the range is exhausted, or Redis does not answer."""


# Takes the first free id of the range in one round trip: KEYS[1] is the prefix, ARGV the
# owner, the expiry in ms, first, last, then the ids to skip.
_ACQUIRE = """
local skip = {}
for i = 5, #ARGV do skip[tonumber(ARGV[i])] = true end
for id = tonumber(ARGV[3]), tonumber(ARGV[4]) do
    if not skip[id] and redis.call('set', KEYS[1] .. id, ARGV[1], 'NX', 'PX', ARGV[2]) then
        return id
    end
end
return false
"""
# Renew a lease that is still ours, or take it again if Redis lost it (a restart without
# persistence): 1. It is 0 only when another process holds it now: the lease is lost.
_RENEW = """
local holder = redis.call('get', KEYS[1])
if holder == ARGV[1] then
    redis.call('pexpire', KEYS[1], ARGV[2])
    return 1
end
if not holder then
    redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return 1
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


def gateway_name():
    return f"{settings.IBKR_HOST or '127.0.0.1'}:{settings.IBKR_PORT}"


def _range_text(first, last):
    return f"{first}-{last}"


@dataclass
class Lease:
    """One client id held by this process for one gateway."""

    client_id: int
    gateway: str
    owner: str
    store: object
    pid: int = field(default_factory=os.getpid)
    lost: bool = False
    handle: object = None  # the lock file (without Redis)

    def renew(self):
        if not self.store.renew(self):
            self.lost = True
            logger.error(
                "IB client id %s at %s was taken by another process; this process leases "
                "a new one before its next IB request.", self.client_id, self.gateway,
            )  # fmt: skip
        return not self.lost

    def release(self):
        self.store.release(self)


class RedisLeases:
    def __init__(self, url, ttl):
        self.url = url
        self.ttl_ms = max(int(ttl * 1000), 1)
        self.redis = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)

    def prefix(self, gateway):
        return f"tradingsite:ib-client-id:{gateway}:"

    def _down(self, exc):
        return ClientIdUnavailable(
            f"Cannot lease an IB client id: Redis at {_redacted(self.url)} does not answer "
            f"({exc}). Start Redis, or point REDIS_URL at it."
        )

    def acquire(self, *, gateway, owner, first, last, skip):
        try:
            found = self.redis.eval(
                _ACQUIRE, 1, self.prefix(gateway), owner, self.ttl_ms, first, last, *skip
            )
        except redis.RedisError as exc:
            raise self._down(exc) from None
        if found is None:
            return None, self.free(gateway=gateway, first=first, last=last, skip=set(skip))[1]
        return Lease(client_id=int(found), gateway=gateway, owner=owner, store=self), []

    def free(self, *, gateway, first, last, skip):
        """How many ids of the range are free now, and [(id, holder)] of the held ones."""
        ids = [i for i in range(first, last + 1) if i not in skip]
        try:
            holders = self.redis.mget([self.prefix(gateway) + str(i) for i in ids]) if ids else []
        except redis.RedisError as exc:
            raise self._down(exc) from None
        held = [(i, h.decode()) for i, h in zip(ids, holders, strict=True) if h]
        return len(ids) - len(held), held

    def renew(self, lease):
        key = self.prefix(lease.gateway) + str(lease.client_id)
        try:
            return bool(self.redis.eval(_RENEW, 1, key, lease.owner, self.ttl_ms))
        except redis.RedisError as exc:
            logger.warning("could not renew IB client id %s's lease: %s", lease.client_id, exc)
            return True  # still ours until its expiry; tried again at the next beat

    def release(self, lease):
        key = self.prefix(lease.gateway) + str(lease.client_id)
        try:
            self.redis.eval(_RELEASE, 1, key, lease.owner)
        except redis.RedisError as exc:
            logger.warning("could not release IB client id %s: %s (it expires by itself)",
                           lease.client_id, exc)  # fmt: skip

    def holder(self, gateway, client_id):
        value = self.redis.get(self.prefix(gateway) + str(client_id))
        return value.decode() if value else None


class LocalLeases:
    """Leases on one machine without Redis: an exclusive flock per id, freed by the kernel."""

    def __init__(self, directory):
        self.directory = Path(directory)

    def _path(self, gateway, client_id):
        return self.directory / re.sub(r"[^A-Za-z0-9.-]+", "_", gateway) / f"{client_id}.lock"

    def acquire(self, *, gateway, owner, first, last, skip):
        held = []
        for client_id in range(first, last + 1):
            if client_id in skip:
                continue
            path = self._path(gateway, client_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(path, "a+")  # noqa: SIM115 - held open for the lease's life
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                held.append((client_id, handle.read().strip() or "another process"))
                handle.close()
                continue
            handle.seek(0)
            handle.truncate()
            handle.write(owner)
            handle.flush()
            lease = Lease(client_id=client_id, gateway=gateway, owner=owner, store=self)
            lease.handle = handle
            return lease, []
        return None, held

    def free(self, *, gateway, first, last, skip):
        """How many ids of the range are free now (each lock taken and let go at once)."""
        free, held = 0, []
        for client_id in range(first, last + 1):
            if client_id in skip:
                continue
            lease, _ = self.acquire(gateway=gateway, owner="a check", first=client_id,
                                    last=client_id, skip=())  # fmt: skip
            if lease is None:
                path = self._path(gateway, client_id)
                held.append((client_id, path.read_text().strip() or "another process"))
            else:
                free += 1
                self.release(lease)
        return free, held

    def renew(self, lease):
        return True

    def release(self, lease):
        if lease.handle is not None and lease.pid == os.getpid():
            lease.handle.close()
            lease.handle = None


def _redacted(url):
    return re.sub(r"//[^@/]*@", "//***@", url)


def lease_store():
    if settings.REDIS_URL:
        return RedisLeases(settings.REDIS_URL, settings.IBKR_CLIENT_ID_LEASE_SECONDS)
    return LocalLeases(Path(settings.VAR_DIR) / "client-ids")


_lock = threading.RLock()
_lease = None
_role = "web"
_heartbeat = None


def set_role(role):
    global _role
    previous, _role = _role, role
    return previous


def _owner():
    return f"{_role} pid {os.getpid()} on {socket.gethostname()} #{uuid.uuid4().hex[:8]}"


def lease_client_id(*, skip=()):
    """This process's client id for the settings' gateway, leased now if it holds none (or
    its lease was lost, or is for another gateway); a ``ClientIdUnavailable`` naming the range
    and why when none can be had."""
    global _lease
    with _lock:
        gateway = gateway_name()
        current = _lease if _lease is not None and _lease.pid == os.getpid() else None
        if current is not None and current.gateway == gateway and not current.lost:
            if current.client_id not in skip:
                return current.client_id
        if current is not None:
            current.release()
        _lease = None
        first, last = client_id_range(settings.IBKR_CLIENT_ID_RANGE)
        excluded = {settings.IBKR_MASTER_CLIENT_ID, *skip}
        store = lease_store()
        lease, held = store.acquire(
            gateway=gateway, owner=_owner(), first=first, last=last, skip=sorted(excluded)
        )
        if lease is None:
            raise _unavailable(gateway, first, last, held, excluded)
        _lease = lease
        _start_heartbeat()
        logger.info("leased IB client id %s at %s (%s)", lease.client_id, gateway, lease.owner)
        return lease.client_id


def _unavailable(gateway, first, last, held, excluded, *, free=0, wanted=1):
    """The error naming the range and why its ids cannot be had: who holds them, and which
    are never leased."""
    reasons = []
    if held:
        whom = "; ".join(f"{i}: {h.split(' #')[0]}" for i, h in held[:5])
        more = f" and {len(held) - 5} more" if len(held) > 5 else ""
        reasons.append(f"leased by other processes ({whom}{more})")
    inside = sorted(i for i in excluded if first <= i <= last)
    if inside:
        reasons.append(
            f"not leased: {', '.join(map(str, inside))} (the broker listener's "
            "IBKR_MASTER_CLIENT_ID, or refused by IB)"
        )
    what = (
        f"Only {free} free IB client id{'s' if free > 1 else ''} for {wanted} processes"
        if free
        else "No free IB client id"
    )
    return ClientIdUnavailable(
        f"{what} for IB Gateway/TWS at {gateway} in IBKR_CLIENT_ID_RANGE "
        f"{_range_text(first, last)}: {'; '.join(reasons)}. Widen the range or stop a process."
    )


def lease_check(*, wanted):
    """Say now whether ``wanted`` client ids can be leased, taking none: a prefork worker's
    main process (which runs no task and never talks to IB) checks for its pool processes,
    each of which leases its own. A ``ClientIdUnavailable`` as ``lease_client_id``'s."""
    first, last = client_id_range(settings.IBKR_CLIENT_ID_RANGE)
    excluded = {settings.IBKR_MASTER_CLIENT_ID}
    gateway = gateway_name()
    free, held = lease_store().free(gateway=gateway, first=first, last=last, skip=excluded)
    if free < wanted:
        raise _unavailable(gateway, first, last, held, excluded, free=free, wanted=wanted)
    return free


def current_lease():
    """The lease this process holds now, or None."""
    lease = _lease
    return lease if lease is not None and lease.pid == os.getpid() else None


def release_client_id():
    """Give this process's client id back (at exit; after its connection closed)."""
    global _lease
    with _lock:
        if _lease is not None and _lease.pid == os.getpid():
            _lease.release()
        _lease = None


def renew_now():
    """Renew the lease now (what the heartbeat does every third of the lease's life)."""
    lease = current_lease()
    return lease.renew() if lease is not None else False


def _start_heartbeat():
    global _heartbeat
    if _heartbeat is not None and _heartbeat[0] == os.getpid() and _heartbeat[1].is_alive():
        return
    stop = threading.Event()
    interval = max(settings.IBKR_CLIENT_ID_LEASE_SECONDS / 3, 0.05)

    def beat():
        while not stop.wait(interval):
            if current_lease() is not None:
                renew_now()

    thread = threading.Thread(target=beat, name="ib-client-id-lease", daemon=True)
    thread.start()
    _heartbeat = (os.getpid(), thread, stop)


def _forget_in_child():
    """A forked child (a pool process) does not own its parent's lease: it leases its own."""
    global _lease, _heartbeat
    if _lease is not None and _lease.handle is not None:
        _lease.handle.close()  # the parent's flock stays: the parent still has the file open
    _lease = None
    _heartbeat = None


os.register_at_fork(after_in_child=_forget_in_child)
atexit.register(release_client_id)
