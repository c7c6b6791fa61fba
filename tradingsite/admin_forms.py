"""Admin forms that run the services' checks, so the admin shows the same messages as the API,
next to the field they are about."""

from django import forms

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
