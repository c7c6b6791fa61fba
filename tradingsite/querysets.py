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
