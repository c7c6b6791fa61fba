"""Serializer fields the apps share."""

import math
import re

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tradingsite.api.parsers import json_depth_refusal


@extend_schema_field({"type": "string", "enum": ["paper", "live"], "readOnly": True})
class TradingModeField(serializers.Field):
    """``paper`` or ``live``: on every order, trade and position, so no client can mistake one
    for the other."""

    def __init__(self, **kwargs):
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, value):
        return settings.TRADING_MODE


BAR_KEY = re.compile(r"^bar(_\d+)?$")


def jsonb_refusal(value, path=""):
    """Why PostgreSQL's jsonb would refuse ``value``, naming where (``param.x``), or None.

    It refuses a NUL character in a string or a key, and a number that is not finite (NaN, or 1e999,
    which parses as infinity). The API's JSON fields and the admin's JSON fields both ask here.
    """
    where = f"{path}: " if path else ""
    if isinstance(value, str):
        if "\x00" in value:
            return f"{where}NUL characters are not allowed."
    elif isinstance(value, float):
        if not math.isfinite(value):
            return f"{where}numbers must be finite."
    elif isinstance(value, dict):
        for key, item in value.items():
            refusal = jsonb_refusal(key, path) or jsonb_refusal(
                item, f"{path}.{key}" if path else str(key)
            )
            if refusal:
                return refusal
    elif isinstance(value, list):
        for index, item in enumerate(value):
            refusal = jsonb_refusal(item, f"{path}[{index}]")
            if refusal:
                return refusal
    return None


class _StorableJSONField(serializers.JSONField):
    """JSON of one shape (``shape``, a Python type) that PostgreSQL's jsonb can store."""

    shape = object

    def to_internal_value(self, data):
        if getattr(data, "is_json_string", False):  # sent as a form field: JSON text
            refusal = json_depth_refusal(data)
            if refusal:
                raise serializers.ValidationError(refusal)
        value = super().to_internal_value(data)
        if not isinstance(value, self.shape):
            self.fail("wrong_shape")
        refusal = jsonb_refusal(value, self.field_name)
        if refusal:
            raise serializers.ValidationError(refusal)
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
