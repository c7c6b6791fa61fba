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
        details = "; ".join(f"{field}: {reason}" for field, reason in self.extra.items())
        return f"{self.message} ({details})"
