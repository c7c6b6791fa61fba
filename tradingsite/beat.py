"""Celery beat's scheduler: django-celery-beat's DatabaseScheduler (the schedules live in its
tables, edited in the admin), made to stay fast with a thousand schedules.

Trap: celery's ``Scheduler.tick`` sends one due task per call, and each call first compares
the whole schedule with a copy of it (every entry's ``__eq__``) and asks the database whether
it changed: with 1,000 strategies due on the same minute that is a million comparisons and
2,000 queries per minute, and the last of them was sent 22 s after its tick (bench/scale.py).
Here the schedule is compared only after it was read again from the database (a change), and
the database is asked for changes at most once a second.
"""

import time

from django_celery_beat.schedulers import DatabaseScheduler as BaseDatabaseScheduler

CHANGES_CHECK_SECONDS = 1.0


class DatabaseScheduler(BaseDatabaseScheduler):
    _generation = 0  # how many times the schedule was read from the database
    _compared = None  # the generation last compared
    _changes_checked = None

    def all_as_schedule(self):
        self._generation += 1
        return super().all_as_schedule()

    def schedules_equal(self, *args, **kwargs):
        if not self._heap_invalidated and self._compared == self._generation:
            return True  # not read again since the last comparison: the same schedule
        self._compared = self._generation
        return super().schedules_equal(*args, **kwargs)

    def schedule_changed(self):
        now = time.monotonic()
        if (
            self._changes_checked is not None
            and now - self._changes_checked < CHANGES_CHECK_SECONDS
        ):
            return False
        self._changes_checked = now
        return super().schedule_changed()
