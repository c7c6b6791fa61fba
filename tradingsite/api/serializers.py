"""The ModelSerializer the apps' API serializers derive from: DRF's, with a leaner read.

Two costs of DRF's that grow with every request, not with what it asks:

- ``ModelSerializer.get_fields`` builds each field from the model's (its kwargs, validators,
  choices) for every serializer made, so on every request. The fields depend on the class
  alone: they are built once per class here, and each serializer gets copies (see
  ``_fresh``).
- ``Serializer.to_representation`` walks ``fields`` anew for every row: a generator over the
  fields, the generic ``fields.get_attribute`` (a ``Mapping`` check and a callable check per
  attribute) and a ``PKOnlyObject`` check, 850 times for a listing page of 50 rows of 17
  fields. Here each serializer (a listing's child is one serializer for all its rows) works
  out once which fields read a plain attribute of the row; those are read with ``getattr``
  and handed to the field's own ``to_representation``. Everything else (relations, dotted
  sources, callables, a missing attribute, a row that is neither a model instance nor a dict)
  goes through DRF's own code, so the output is exactly DRF's.

A listing can go one step further (``values_of``, used by ``tradingsite.api.views``): when
every field shows a column or an annotation as it is read, the rows are read with
``.values()``, dicts instead of model instances, which spares Django's ``Model.__init__`` for
every row. A field of ``source="*"`` stands in the way unless it declares ``reads_row = False``
(its value does not come from the row, as the trading mode's).
"""

import copy
import decimal
from functools import cached_property

from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from django.db.models.query_utils import DeferredAttribute
from rest_framework import serializers
from rest_framework.fields import Field, SkipField
from rest_framework.relations import PKOnlyObject
from rest_framework.settings import api_settings

_MISSING = object()


class DecimalField(serializers.DecimalField):
    """DRF's DecimalField with what it looks up for every value worked out once: its quantum
    (``Decimal(".1") ** decimal_places``) and whether it writes a plain string. The same
    rounding, context and text.

    A value read from its column already has the field's decimal places and no more digits
    than it allows (PostgreSQL's numeric(max_digits, decimal_places) gives it so): quantizing
    it would return it unchanged, so it is written as it is, without a decimal context made
    for it (two thirds of a decimal's time, a tenth of a listing's serializing).
    """

    def __init__(self, max_digits, decimal_places, **kwargs):
        super().__init__(max_digits, decimal_places, **kwargs)
        self._quantum = None if decimal_places is None else decimal.Decimal(".1") ** decimal_places
        self._plain_string = (
            getattr(self, "coerce_to_string", api_settings.COERCE_DECIMAL_TO_STRING)
            and not self.localize
            and not self.normalize_output
        )
        # adjusted() (the exponent of the first digit) below this: no more than max_digits
        self._fits_below = (
            None if max_digits is None or decimal_places is None else max_digits - decimal_places
        )

    def to_representation(self, value):
        if self._plain_string and type(value) is decimal.Decimal:
            if (
                self._fits_below is not None
                and value.same_quantum(self._quantum)
                and value.adjusted() < self._fits_below
            ):
                return f"{value:f}"  # quantize() would give it back unchanged
            return f"{self.quantize(value):f}"
        return super().to_representation(value)

    def quantize(self, value):
        if self._quantum is None:
            return value
        context = decimal.getcontext().copy()
        if self.max_digits is not None:
            context.prec = self.max_digits
        return value.quantize(self._quantum, rounding=self.rounding, context=context)


def _fresh(field):
    """A copy, for one serializer, of a field built once and never bound.

    DRF deep-copies a field by making it anew from its arguments (a ChoiceField rebuilds its
    choices), so that no state is shared. A field holding no other field has none to share
    but its read-only settings (choices, validators, messages): it is copied as it is, and
    binding it sets the copy's own name, parent and source. A serializer, or a field with a
    child field or relation, is deep-copied as DRF does, so that its children are its own.
    """
    if (
        isinstance(field, serializers.BaseSerializer)
        or hasattr(field, "child")
        or hasattr(field, "child_relation")
    ):
        return copy.deepcopy(field)
    return copy.copy(field)


def _attribute(field):
    """The attribute a field reads straight off the row: its name, ``""`` for the row itself
    (``source="*"``), or None when DRF's own ``get_attribute`` must read it."""
    if type(field).get_attribute is not Field.get_attribute:  # relations resolve their own
        return None
    if field.source == "*":
        return ""
    return field.source_attrs[0] if len(field.source_attrs) == 1 else None


def _plain_columns(model):
    """The model's columns whose attribute is the value as read (not a file, say)."""
    return {
        field.attname
        for field in model._meta.concrete_fields
        if field.descriptor_class.__get__ is DeferredAttribute.__get__
    }


class ModelSerializer(serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DecimalField: DecimalField,
    }

    _built_fields = {}  # serializer class: its fields as get_fields built them, never bound

    def get_fields(self):
        cls = type(self)
        if cls not in self._built_fields:
            self._built_fields[cls] = super().get_fields()
        return {name: _fresh(field) for name, field in self._built_fields[cls].items()}

    _row_attributes = {}  # serializer class: the attributes it reads of a row, or None

    @classmethod
    def values_of(cls, queryset, *, also=()):
        """``queryset.values()`` of the columns and annotations the rows show (and ``also``),
        when they are all this serializer reads of a row; else ``queryset`` itself."""
        if cls not in cls._row_attributes:
            cls._row_attributes[cls] = cls._attributes_read()
        attributes = cls._row_attributes[cls]
        if attributes is None:
            return queryset
        columns = _plain_columns(queryset.model)
        annotations = queryset.query.annotations
        if any(name not in columns and name not in annotations for name in attributes):
            return queryset
        return queryset.values(*dict.fromkeys([*attributes, *also]))

    @classmethod
    def _attributes_read(cls):
        if cls.to_representation is not ModelSerializer.to_representation:
            return None
        attributes = []
        for _, attribute, field, _ in cls()._reading:
            if attribute:
                attributes.append(attribute)
            elif attribute is None or getattr(field, "reads_row", True):
                return None
        return attributes

    @cached_property
    def _reading(self):
        """(name, attribute or None, field, its to_representation) of each readable field."""
        return [
            (field.field_name, _attribute(field), field, field.to_representation)
            for field in self._readable_fields
        ]

    def to_representation(self, instance):
        if type(instance) is dict:  # a row of values_of
            read = instance.get
        elif isinstance(instance, models.Model):
            read = None
        else:
            return super().to_representation(instance)
        ret = {}
        for name, attribute, field, represent in self._reading:
            if attribute:
                if read is not None:
                    value = read(attribute, _MISSING)
                else:
                    try:
                        value = getattr(instance, attribute)
                    except (AttributeError, ObjectDoesNotExist):
                        value = _MISSING
            elif attribute == "":
                value = instance
            else:
                value = _MISSING
            if value is _MISSING or callable(value):
                # DRF's own path (Serializer.to_representation), field by field.
                try:
                    value = field.get_attribute(instance)
                except SkipField:
                    continue
                if (value.pk if isinstance(value, PKOnlyObject) else value) is None:
                    ret[name] = None
                else:
                    ret[name] = represent(value)
            elif value is None:
                ret[name] = None
            else:
                ret[name] = represent(value)
        return ret
