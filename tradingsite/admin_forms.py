"""Admin forms that run the services' checks, so the admin shows the same messages as the API,
next to the field they are about."""

import json
import sys

from django import forms

from tradingsite.api.fields import jsonb_refusal
from tradingsite.api.parsers import json_depth_refusal
from tradingsite.exceptions import ApplicationError


class ServiceCheckedForm(forms.ModelForm):
    """Calls ``check(cleaned_data)``; an ApplicationError's fields become form errors."""

    def check(self, data):
        raise NotImplementedError

    def clean(self):
        data = super().clean()
        try:
            self.check(data)
        except ApplicationError as refused:
            for field, reason in refused.extra.items():
                target = field if field in self.fields else None
                messages = reason if isinstance(reason, list) else [reason]
                if isinstance(reason, dict):
                    messages = [f"{name}: {why}" for name, why in reason.items()]
                for message in messages:
                    self.add_error(target, message)
        return data


# Python reads integers of at most this many digits (sys.get_int_max_str_digits()).
TOO_MANY_DIGITS = f"Enter a valid JSON: numbers have at most {sys.get_int_max_str_digits()} digits."


class PrettyJSONField(forms.JSONField):
    """JSON shown indented, one key a line, so steps and parameters read like a document."""

    def to_python(self, value):
        # Python's json recurses into nested arrays and objects: the text's depth is checked
        # before it reads it.
        if isinstance(value, str) and not isinstance(value, forms.fields.JSONString):
            refusal = json_depth_refusal(value)
            if refusal:
                raise forms.ValidationError(refusal, code="invalid")
            if value.strip() and value not in self.empty_values:
                try:
                    json.loads(value, cls=self.decoder)
                except json.JSONDecodeError as exc:  # where, as an editor counts
                    raise forms.ValidationError(
                        f"Enter a valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.",
                        code="invalid",
                    ) from None
                except ValueError:
                    raise forms.ValidationError(TOO_MANY_DIGITS, code="invalid") from None
        # Python's json reads NaN and Infinity, and "\u0000" is valid JSON: PostgreSQL's jsonb
        # takes none of them, so they are refused here rather than by the database.
        try:
            value = super().to_python(value)
        except ValueError:  # not JSONDecodeError, which Django reports: an integer too long
            raise forms.ValidationError(TOO_MANY_DIGITS, code="invalid") from None
        refusal = jsonb_refusal(value)
        if refusal:
            raise forms.ValidationError(refusal, code="invalid")
        return value

    def bound_data(self, data, initial):
        """The text as typed when Python's json cannot read it (shown again with the error)."""
        if isinstance(data, str) and json_depth_refusal(data):
            return forms.fields.InvalidJSONInput(data)
        try:
            return super().bound_data(data, initial)
        except ValueError:
            return forms.fields.InvalidJSONInput(data)

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False, cls=self.encoder)
