"""The apps' filtersets' base, and the filter types they share: whole-number ids and strict
ISO 8601 ranges."""

import copy
from datetime import UTC

from django import forms
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField
from django_filters.filters import QuerySetRequestMixin
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

ISO_DATE = ["%Y-%m-%d"]


class _Filters(dict):
    """A filterset class's declared filters, which each filterset copies (``deepcopy``) one
    by one and shallowly.

    django-filter deep-copies every filter for every request, its choices and arguments
    included, a tenth of a listing's time; all a filterset sets on its copies is their
    ``model`` and ``parent``. A filter's arguments (``extra``) are only read, and its form
    field is made from them on the copy. A ``method`` filter is bound to its copy again, as
    its setter binds it.
    """

    def __deepcopy__(self, memo):
        copies = {}
        for name, declared in self.items():
            copies[name] = filter_ = copy.copy(declared)
            if declared.method is not None:
                filter_.method = declared.method
        return copies


class FilterSet(filters.FilterSet):
    """django-filter's FilterSet, made cheaper per request: its filters are copied shallowly
    (``_Filters``), and its form class is made once per filterset class.

    django-filter makes a new form class, and a form field for each filter, on every request
    (``get_form_class``), a tenth of a listing's time. Those fields follow from the declared
    filters alone, save a model-choice filter's, whose queryset may depend on the request: a
    filterset with one (or whose filters are not its declared ones) keeps django-filter's way.
    A form is still made per request from the class, with its own copies of the fields.
    """

    _form_classes = {}  # filterset class: its form class

    @classmethod
    def get_filters(cls):
        return _Filters(super().get_filters())

    def get_form_class(self):
        cls = type(self)
        if cls in self._form_classes:
            return self._form_classes[cls]
        form_class = super().get_form_class()
        if self.filters.keys() == self.base_filters.keys() and not any(
            isinstance(declared, QuerySetRequestMixin) for declared in self.filters.values()
        ):
            self._form_classes[cls] = form_class
        return form_class


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(filters.NumberFilter):
    """An id or conid: a whole number ("1.5" is refused, not rounded to 1)."""

    field_class = forms.IntegerField


class UTCIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time (a date alone is its midnight UTC), sent to the database in UTC.

    PostgreSQL refuses UTC offsets beyond 15:59 that Python accepts ("...-17:25").
    """

    def to_python(self, value):
        moment = super().to_python(value)
        if moment is None:
            return None
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("Out of the range of dates.", code="invalid") from None


class UTCIsoDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UTCIsoDateTimeField


def datetime_range(field_name):
    """``<x>_after`` and ``<x>_before`` filters: ISO 8601 date-times, both ends included."""
    return (
        UTCIsoDateTimeFilter(
            field_name=field_name, lookup_expr="gte", label=f"{field_name} at or after (ISO 8601)"
        ),
        UTCIsoDateTimeFilter(
            field_name=field_name, lookup_expr="lte", label=f"{field_name} at or before (ISO 8601)"
        ),
    )


def date_range(field_name):
    """``<x>_after`` and ``<x>_before`` filters on a date (YYYY-MM-DD), both ends included."""
    return (
        filters.DateFilter(
            field_name=field_name, lookup_expr="gte", input_formats=ISO_DATE, label="from"
        ),
        filters.DateFilter(
            field_name=field_name, lookup_expr="lte", input_formats=ISO_DATE, label="until"
        ),
    )
