"""The one error type a service raises when it refuses (HackSoft styleguide).

``extra`` maps a field name to the reason, so the API can return a 400 naming the field and
the admin can show the message next to it. ``errors``, where a service has them, are the same
problems as structured records (a workflow's ``StepError``), for a face that places each one
itself: the admin, without reading the text back.
"""

from django.db.models import ProtectedError


class ApplicationError(Exception):
    def __init__(self, message, extra=None, *, errors=()):
        super().__init__(message)
        self.message = message
        self.extra = extra or {}
        self.errors = list(errors)

    def __str__(self):
        if not self.extra:
            return self.message
        return f"{self.message} ({'; '.join(_reasons(self.extra))})"


class ServiceUnavailable(ApplicationError):
    """A refusal because something the site relies on is down (the task queue): the same
    request can succeed later. The API answers it with 503, the admin and commands as any
    refusal."""


def delete_or_refuse(instance, *, message, extra):
    """Delete ``instance``, or refuse with ``message`` (and ``extra``) when rows still point
    at it through a PROTECT foreign key: history is kept, never cascaded away."""
    try:
        instance.delete()
    except ProtectedError:
        raise ApplicationError(message, extra=extra) from None


def _reasons(extra, prefix=""):
    """``field: reason`` for each problem, nested fields dotted (``param.bar_1: ...``)."""
    for field, reason in extra.items():
        name = f"{prefix}{field}"
        if isinstance(reason, dict):
            yield from _reasons(reason, f"{name}.")
        elif isinstance(reason, list | tuple):
            yield f"{name}: {', '.join(str(item) for item in reason)}"
        else:
            yield f"{name}: {reason}"
