"""Runs of one strategy never overlap.

A lock's ``start`` claims the strategy and switches the execution from pending to running.
With Redis (REDIS_URL), the claim is a lock with an expiry that the runner extends at every
step, so a dead worker's lock frees itself; a step must therefore end within LOCK_SECONDS
(the wait step is capped below it). Without Redis (the embedded default), the database: the
execution's own running status is the claim, written in the transaction that checks that no
other execution of the strategy is running.
"""

import time
from enum import Enum

from django.conf import settings
from django.db import transaction
from django.utils import timezone

LOCK_SECONDS = 600


class Start(Enum):
    STARTED = "started"
    BUSY = "busy"  # another run of the strategy is in progress
    GONE = "gone"  # the execution is no longer pending (cancelled while it waited)


class RunLockLost(Exception):
    """The run no longer holds its strategy: another run may have started, so it stops."""


def _switch_to_running(execution_id, task_id):
    from ..models import ExecutionStatus, WorkflowExecution

    updates = {"status": ExecutionStatus.RUNNING, "started_at": timezone.now()}
    if task_id:
        updates["task_id"] = task_id
    pending = WorkflowExecution.objects.filter(pk=execution_id, status=ExecutionStatus.PENDING)
    return Start.STARTED if pending.update(**updates) else Start.GONE


class RedisRunLock:
    def __init__(self, strategy_id):
        import redis

        self.strategy_id = strategy_id
        self._lock = redis.Redis.from_url(settings.REDIS_URL).lock(
            f"tradingsite:strategy:{strategy_id}:run", timeout=LOCK_SECONDS
        )
        self._held = False
        self._extended_at = None  # monotonic time the lock was last taken or extended

    def acquire(self):
        self._held = self._lock.acquire(blocking=False)
        self._extended_at = time.monotonic()
        return self._held

    def start(self, execution_id, *, task_id=None):
        if not self.acquire():
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
        from strategies.models import Strategy

        from ..models import ExecutionStatus, WorkflowExecution

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
