"""The one error type a service raises when it refuses (HackSoft styleguide).

``extra`` maps a field name to the reason, so the API can return a 400 naming the field and
the admin can show the message next to it.
"""


class ApplicationError(Exception):
    def __init__(self, message, extra=None):
        super().__init__(message)
        self.message = message
        self.extra = extra or {}

    def __str__(self):
        if not self.extra:
            return self.message
        return f"{self.message} ({'; '.join(_reasons(self.extra))})"


class ServiceUnavailable(ApplicationError):
    """A refusal because something the site relies on is down (the task queue): the same
    request can succeed later. The API answers it with 503, the admin and commands as any
    refusal."""


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
