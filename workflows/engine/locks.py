"""Runs of one strategy never overlap.

A lock's ``start`` claims the strategy and switches the execution from pending to running.
With Redis (REDIS_URL), the claim is a lock with an expiry that the runner extends at every
step, so a dead worker's lock frees itself; a step must therefore end within LOCK_SECONDS
(the wait step is capped below it). The lock names its owner (execution id, host, pid): a run
finding the lock held by a dead owner (its execution has ended or was swept, or its process
on this host is gone) takes it over at once instead of waiting for the expiry. Without Redis
(the embedded default), the database: the execution's own running status is the claim,
written in the transaction that checks that no other execution of the strategy is running.
"""

import json
import logging
import os
import socket
import time
from enum import Enum

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from strategies.models import Strategy

from ..models import ExecutionStatus, WorkflowExecution

logger = logging.getLogger(__name__)

LOCK_SECONDS = 600
FINISHED = ("completed", "failed", "cancelled")
# Replace the lock's value only if it is still the dead owner's: two runs taking over at once
# cannot both win.
_SWAP = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3])
    return 1
end
return 0
"""
_DROP = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


class Start(Enum):
    STARTED = "started"
    BUSY = "busy"  # another run of the strategy is in progress
    GONE = "gone"  # the execution is no longer pending (cancelled while it waited)


class RunLockLost(Exception):
    """The run no longer holds its strategy: another run may have started, so it stops."""


def _switch_to_running(execution_id, task_id):
    updates = {"status": ExecutionStatus.RUNNING, "started_at": timezone.now()}
    if task_id:
        updates["task_id"] = task_id
    pending = WorkflowExecution.objects.filter(pk=execution_id, status=ExecutionStatus.PENDING)
    return Start.STARTED if pending.update(**updates) else Start.GONE


def _owner(execution_id):
    return json.dumps({"execution_id": execution_id, "host": socket.gethostname(),
                       "pid": os.getpid()})  # fmt: skip


def _parse_owner(value):
    try:
        owner = json.loads(value)
    except (TypeError, ValueError):
        return None  # a lock of an older release (a bare token): left to its expiry
    return owner if isinstance(owner, dict) and {"host", "pid"} <= owner.keys() else None


def _process_gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, TypeError):
        return False
    return False


def owner_gone(owner):
    """Why the run that holds a lock (``owner``: execution_id, host, pid) cannot be running
    any more, or None when it may be."""
    execution_id = owner.get("execution_id")
    if execution_id is not None:
        status = (
            WorkflowExecution.objects.filter(pk=execution_id)
            .values_list("status", flat=True)
            .first()
        )
        if status is None or status in FINISHED:
            return f"its run (execution {execution_id}) has ended ({status or 'deleted'})"
    if owner["host"] == socket.gethostname() and _process_gone(owner["pid"]):
        return f"its worker process (pid {owner['pid']} on {owner['host']}) is gone"
    return None


# A Redis that accepts and never answers (a hung host, a full network buffer) must not hang
# a run at its lock: past these the call raises, and the run ends saying why.
REDIS_CONNECT_TIMEOUT = 3
REDIS_TIMEOUT = 5


def _redis():
    import redis

    return redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
        socket_timeout=REDIS_TIMEOUT,
    )


def run_lock_key(strategy_id):
    return f"tradingsite:strategy:{strategy_id}:run"


def run_lock_owner(strategy_id):
    """The owner named by the strategy's Redis lock (None: no lock, or no Redis)."""
    if not settings.REDIS_URL:
        return None
    return _parse_owner(_redis().get(run_lock_key(strategy_id)))


def run_lock_drop(*, strategy_id, execution_id):
    """Free the strategy's lock if execution ``execution_id`` holds it (its run was ended
    from outside: its worker is gone). Returns whether it was held."""
    if not settings.REDIS_URL:
        return False
    client = _redis()
    value = client.get(run_lock_key(strategy_id))
    owner = _parse_owner(value)
    if owner is None or owner.get("execution_id") != execution_id:
        return False
    return bool(client.eval(_DROP, 1, run_lock_key(strategy_id), value))


class RedisRunLock:
    def __init__(self, strategy_id):
        self.strategy_id = strategy_id
        self._client = _redis()
        self.key = run_lock_key(strategy_id)
        self._lock = self._client.lock(self.key, timeout=LOCK_SECONDS)
        self._held = False
        self._extended_at = None  # monotonic time the lock was last taken or extended

    def acquire(self, execution_id=None):
        token = _owner(execution_id)
        self._held = self._lock.acquire(blocking=False, token=token) or self._take_over(token)
        self._extended_at = time.monotonic()
        return self._held

    def _take_over(self, token):
        """Take the lock from a dead owner, ending its run (failed, saying why) if it is
        still marked running."""
        value = self._client.get(self.key)
        owner = _parse_owner(value)
        why = owner_gone(owner) if owner is not None else None
        if why is None:
            return False
        if not self._client.eval(_SWAP, 1, self.key, value, token, LOCK_SECONDS * 1000):
            return False
        self._lock.local.token = self._client.get_encoder().encode(token)
        logger.warning("strategy %s: took over the run lock: %s", self.strategy_id, why)
        if owner.get("execution_id") is not None:
            WorkflowExecution.objects.filter(
                pk=owner["execution_id"],
                status__in=[ExecutionStatus.PENDING, ExecutionStatus.RUNNING],
            ).update(
                status=ExecutionStatus.FAILED, completed_at=timezone.now(),
                error_message=f"Stopped: {why}; the strategy's next run took over its lock.",
            )  # fmt: skip
        return True

    def start(self, execution_id, *, task_id=None):
        if not self.acquire(execution_id):
            return Start.BUSY
        return _switch_to_running(execution_id, task_id)

    def extend(self):
        from redis.exceptions import ConnectionError, LockError, TimeoutError

        if not self._held:
            return
        try:
            self._lock.extend(LOCK_SECONDS, replace_ttl=True)
        except (ConnectionError, TimeoutError) as exc:
            self._held = False
            raise RunLockLost(
                f"Redis could not be reached to keep the run's lock on strategy "
                f"{self.strategy_id} ({exc}); stopped so that no other run overlaps it. Run "
                "it again once Redis is back."
            ) from None
        except LockError:
            self._held = False
            if time.monotonic() - self._extended_at < LOCK_SECONDS:
                why = "Redis lost it (restarted or flushed)"
            else:
                why = f"a step lasted longer than {LOCK_SECONDS} s"
            raise RunLockLost(
                f"the run lost its lock on strategy {self.strategy_id}: {why}, so another "
                "run may have started; stopped so that the two do not overlap."
            ) from None
        self._extended_at = time.monotonic()

    def release(self):
        if self._held:
            self._held = False
            try:
                self._lock.release()
            except Exception:  # expired meanwhile: nothing to release
                pass


class DatabaseRunLock:
    def __init__(self, strategy_id):
        self.strategy_id = strategy_id

    def start(self, execution_id, *, task_id=None):
        """Check and switch in one transaction, under the strategy's row lock: of two runs
        starting together, the second waits for the first to commit, then sees it running.
        (SQLite has no row locks, but its writers take turns: transaction_mode IMMEDIATE.)"""
        with transaction.atomic():
            list(Strategy.objects.select_for_update().filter(pk=self.strategy_id).values("pk"))
            running = WorkflowExecution.objects.filter(
                strategy_id=self.strategy_id, status=ExecutionStatus.RUNNING
            )
            if running.exists():
                return Start.BUSY
            return _switch_to_running(execution_id, task_id)

    def extend(self):
        pass

    def release(self):
        pass  # the run's final status frees the strategy


def strategy_run_lock(strategy_id):
    return RedisRunLock(strategy_id) if settings.REDIS_URL else DatabaseRunLock(strategy_id)
