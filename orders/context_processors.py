from django.utils.functional import SimpleLazyObject

from .selectors import trading_halt


def trading_halt_banner(request):
    """Every admin page says when trading is halted (the kill switch), until a person resumes
    it: one query, run only by a page that shows the header."""
    return {"TRADING_HALT": SimpleLazyObject(lambda: trading_halt() or "")}
