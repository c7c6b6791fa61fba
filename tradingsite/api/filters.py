"""The apps' filtersets' base, and the filter types they share: whole-number ids and strict
ISO 8601 ranges."""

from datetime import UTC

from django import forms
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from tradingsite.fast import FastFilterSetMixin

ISO_DATE = ["%Y-%m-%d"]


class FilterSet(FastFilterSetMixin, filters.FilterSet):
    """django-filter's FilterSet, with the speed layer's cheaper copies and form classes
    (``tradingsite.fast.FastFilterSetMixin``)."""


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
