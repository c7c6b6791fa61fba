"""Helpers the apps' selectors share."""

from functools import cache, wraps


def built_once(selector):
    """A selector without arguments whose queryset is built once and cloned for every call.

    Building a queryset is not free: an annotation's subquery or join is resolved when it is
    added, a few tenths of a millisecond for a listing's selector, on every request. A queryset
    is a template until it is evaluated, so the selector's is kept (never evaluated) and each
    call gets ``.all()`` of it, a fresh queryset, as DRF does with a view's ``queryset``.
    """
    template = cache(selector)

    @wraps(selector)
    def fresh():
        return template().all()

    return fresh


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
