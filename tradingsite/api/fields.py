"""Serializer fields the apps share."""

import math
import re

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


@extend_schema_field({"type": "string", "enum": ["paper", "live"], "readOnly": True})
class TradingModeField(serializers.Field):
    """``paper`` or ``live``: on every order, trade and position, so no client can mistake one
    for the other."""

    reads_row = False  # the site's, whatever the row (tradingsite.api.serializers)

    def __init__(self, **kwargs):
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, value):
        return settings.TRADING_MODE


BAR_KEY = re.compile(r"^bar(_\d+)?$")


def _storable(value, path):
    # PostgreSQL's jsonb refuses "\u0000" in a string or a key, and a number too large for a
    # float (1e999 parses as infinity): refuse them here, naming where.
    if isinstance(value, str):
        if "\x00" in value:
            raise serializers.ValidationError(f"{path}: NUL characters are not allowed.")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise serializers.ValidationError(f"{path}: numbers must be finite.")
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable(key, path)
            _storable(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _storable(item, f"{path}[{index}]")


class _StorableJSONField(serializers.JSONField):
    """JSON of one shape (``shape``, a Python type) that PostgreSQL's jsonb can store."""

    shape = object

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not isinstance(value, self.shape):
            self.fail("wrong_shape")
        _storable(value, self.field_name)
        return value


@extend_schema_field(OpenApiTypes.OBJECT)
class JSONObjectField(_StorableJSONField):
    """A JSON object (``{name: value}``) that PostgreSQL's jsonb can store."""

    shape = dict
    default_error_messages = {"wrong_shape": "Must be an object of names to values."}


@extend_schema_field({"type": "array", "items": {"type": "object", "additionalProperties": {}}})
class JSONListField(_StorableJSONField):
    """A JSON array (of steps) that PostgreSQL's jsonb can store."""

    shape = list
    default_error_messages = {"wrong_shape": "Must be a list."}
