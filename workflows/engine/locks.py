"""Runs of one strategy never overlap.

With Redis (REDIS_URL), a lock with an expiry that the runner extends at every step, so a
dead worker's lock frees itself. Without Redis (the embedded default), the database: a run
may start only while no other execution of the strategy is running.
"""

from django.conf import settings

LOCK_SECONDS = 600


class RedisRunLock:
    def __init__(self, strategy_id):
        import redis

        self._lock = redis.Redis.from_url(settings.REDIS_URL).lock(
            f"tradingsite:strategy:{strategy_id}:run", timeout=LOCK_SECONDS
        )
        self._held = False

    def acquire(self):
        self._held = self._lock.acquire(blocking=False)
        return self._held

    def extend(self):
        if self._held:
            self._lock.extend(LOCK_SECONDS, replace_ttl=True)

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

    def acquire(self):
        from django.db import transaction

        from strategies.models import Strategy

        from ..models import ExecutionStatus, WorkflowExecution

        with transaction.atomic():
            Strategy.objects.select_for_update().filter(pk=self.strategy_id).exists()
            return not WorkflowExecution.objects.filter(
                strategy_id=self.strategy_id, status=ExecutionStatus.RUNNING
            ).exists()

    def extend(self):
        pass

    def release(self):
        pass


def strategy_run_lock(strategy_id):
    return RedisRunLock(strategy_id) if settings.REDIS_URL else DatabaseRunLock(strategy_id)
