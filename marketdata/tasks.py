from celery import shared_task
from django.conf import settings

from .bar_store import bars_sync_all
from .services import market_data_purge


@shared_task
def market_data_purge_task():
    return market_data_purge()


@shared_task
def bars_sync_task():
    """The bar store's beat job: every active code, each of ``BAR_STORE_TIMEFRAMES``."""
    logs = bars_sync_all(timeframes=settings.BAR_STORE_TIMEFRAMES)
    return {
        status: sum(log.status == status for log in logs)
        for status in ("success", "partial", "failed")
    }
