"""Beat's scheduler sends every due strategy once per due time, compares its schedule only
after reading it again (not once per task sent: that made a thousand strategies take 22 s to
enqueue), and still picks up a schedule changed in the database."""

from datetime import timedelta

import pytest
from celery import beat as celery_beat
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from marketdata.tests.factories import CodeFactory
from tradingsite import beat
from tradingsite.celery import app
from workflows.services import strategy_create

pytestmark = pytest.mark.django_db(transaction=True)  # beat commits as it reads


def scheduled(count, start=0):
    code = CodeFactory()
    for i in range(start, start + count):
        strategy_create(name=f"every minute {i}", type="two_indicator", codes=[code],
                        schedule_interval_minutes=1)  # fmt: skip
    # each last ran two minutes ago: due now
    PeriodicTask.objects.filter(name__startswith="strategy ").update(
        last_run_at=timezone.now() - timedelta(minutes=2)
    )


def test_every_due_strategy_is_sent_once_and_a_change_is_picked_up(monkeypatch):
    scheduled(30)
    comparisons = []
    full = celery_beat.Scheduler.schedules_equal
    monkeypatch.setattr(celery_beat.Scheduler, "schedules_equal",
                        lambda self, *a: comparisons.append(1) or full(self, *a))  # fmt: skip
    scheduler = beat.DatabaseScheduler(app=app, lazy=True)
    sent = []
    scheduler.apply_entry = lambda entry, producer=None: sent.append(entry.name)
    monkeypatch.setattr(type(scheduler), "producer", None)

    def tick_until_idle():
        for _ in range(200):
            if scheduler.tick() > 0:
                return
        pytest.fail("beat never stopped sending")

    tick_until_idle()
    names = PeriodicTask.objects.filter(name__startswith="strategy ").values_list("name")
    assert sorted(sent) == sorted(name for (name,) in names)
    assert len(sent) == 30 == len(set(sent))
    assert len(comparisons) <= 1  # not one per task sent

    monkeypatch.setattr(beat, "CHANGES_CHECK_SECONDS", 0)
    sent.clear()
    scheduled(1, start=30)  # a new strategy: a change in the table
    tick_until_idle()
    newest = PeriodicTask.objects.filter(name__startswith="strategy ").latest("id")
    assert sent == [newest.name]  # the others ran a moment ago (beat wrote it back)
    scheduler.close()  # writes the last runs, as beat does when it stops
