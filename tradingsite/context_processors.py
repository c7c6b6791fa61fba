from django.conf import settings


def trading_mode(request):
    """Every page knows whether orders go to a paper or a live account."""
    return {"TRADING_MODE": settings.TRADING_MODE}
