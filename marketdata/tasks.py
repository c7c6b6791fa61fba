from celery import shared_task

from .services import market_data_purge


@shared_task
def market_data_purge_task():
    return market_data_purge()
