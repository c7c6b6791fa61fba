"""The one DRF exception handler (as in HackSoft's styleguide ``api/exception_handlers.py``).

Every error body has a ``detail`` sentence. A refused request (400) also has ``errors``,
mapping each field to the list of its reasons; a compound field (a strategy's ``param``, a
nested object) maps to the same shape one level down. So a service's
``ApplicationError("...", extra={"param": {"bar_1": "..."}})``, Django's ``ValidationError``
from a model's ``clean()`` and DRF's own serializer errors all read alike.
"""

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from tradingsite.broker import BrokerError, BrokerUnavailable
from tradingsite.exceptions import ApplicationError, ServiceUnavailable

NON_FIELD = "non_field_errors"


def _reasons(value):
    """A leaf becomes a list of strings; a mapping keeps its keys, each normalised in turn."""
    if isinstance(value, dict):
        return {str(key): _reasons(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        if any(isinstance(item, dict) for item in value):
            return [_reasons(item) for item in value]
        return [str(item) for item in value]
    return [str(value)]


def _invalid(detail, errors):
    set_rollback()
    return Response({"detail": detail, "errors": errors}, status=status.HTTP_400_BAD_REQUEST)


def _summary(errors):
    fields = ", ".join(name for name in errors if name != NON_FIELD)
    messages = errors.get(NON_FIELD)
    if messages and isinstance(messages, list) and isinstance(messages[0], str):
        return messages[0]
    return f"Invalid input: {fields}." if fields else "Invalid input."


def api_exception_handler(exc, context):
    if isinstance(exc, ServiceUnavailable):
        set_rollback()
        return Response(
            {"detail": exc.message}, status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "30"},
        )  # fmt: skip
    if isinstance(exc, ApplicationError):
        return _invalid(exc.message, _reasons(exc.extra) if exc.extra else {})
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            errors = _reasons(exc.message_dict)
        else:
            errors = {NON_FIELD: _reasons(exc.messages)}
        return _invalid(_summary(errors), errors)
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        errors = _reasons(detail) if isinstance(detail, dict) else {NON_FIELD: _reasons(detail)}
        return _invalid(_summary(errors), errors)
    if isinstance(exc, BrokerUnavailable):
        set_rollback()
        return Response(
            {
                "detail": str(exc),
                "broker": {"host": settings.IBKR_HOST or "127.0.0.1", "port": settings.IBKR_PORT},
            },
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "30"},
        )
    if isinstance(exc, BrokerError):
        # The gateway answered but refused or timed out: an upstream failure, not ours.
        set_rollback()
        return Response({"detail": str(exc)}, status=status.HTTP_502_BAD_GATEWAY)
    return drf_exception_handler(exc, context)
