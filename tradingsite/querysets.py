"""Helpers the apps' selectors share; ``built_once`` is the speed layer's
(``tradingsite.fast``)."""

from tradingsite.fast import built_once

__all__ = ["built_once", "delete_in_batches"]


def delete_in_batches(queryset, *, batch=5000):
    """Delete what ``queryset`` selects, ``batch`` rows per transaction, so that a purge of a
    big table never holds its locks for long; returns how many rows went. Each batch is
    selected again through ``queryset``, so a row that stopped matching meanwhile stays."""
    deleted = 0
    while True:
        ids = list(queryset.order_by().values_list("pk", flat=True)[:batch])
        if not ids:
            return deleted
        count, _ = queryset.filter(pk__in=ids).delete()
        deleted += count
