"""The speed layer: every override of a framework internal the site makes for speed, in one
module, behind one setting (``API_FAST``, on unless the environment says ``API_FAST=false``).

Each override gives exactly what the framework gives (``tradingsite/tests/test_fast.py``
compares them, and the API's bytes with the setting on and off); with ``API_FAST`` off each
one steps aside and the framework's own code runs, and ``API_FAST_OFF`` turns single ones off
by name (``OVERRIDES``). ``bench/api.py --each-override`` measures what each is worth
(README, "The speed layer"); one that it showed within the noise is removed. The overrides:

- DRF's ``DecimalField.to_representation`` (``DecimalField``), ``ModelSerializer.get_fields``
  and ``Serializer.to_representation`` (``FastSerializerMixin``);
- django-filter's per-request deep copies and form classes (``FastFilterSetMixin``);
- DRF's token query, compiled once (``FastTokenMixin``);
- a selector's queryset built once and cloned (``built_once``);
- Django's Python ``timestamptz`` loader, replaced by psycopg's (``TimestamptzLoader``).
"""

import copy
import decimal
from functools import cache, cached_property, wraps

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import connections, models, router
from django.utils.translation import gettext_lazy as _
from django_filters.filters import QuerySetRequestMixin
from psycopg import adapters
from psycopg.adapt import Loader
from psycopg.pq import Format
from rest_framework import exceptions, serializers
from rest_framework.fields import Field, SkipField
from rest_framework.relations import PKOnlyObject
from rest_framework.settings import api_settings

_MISSING = object()
TIMESTAMPTZ_OID = adapters.types["timestamptz"].oid


OVERRIDES = (
    "decimal", "fields", "rows", "filters", "filter_forms", "token", "selectors", "timestamptz",
)  # fmt: skip


def fast(override):
    """Whether ``override`` (one of ``OVERRIDES``) is on: ``settings.API_FAST``, less those
    ``settings.API_FAST_OFF`` names (so that a bench can weigh each one on its own)."""
    return settings.API_FAST and override not in settings.API_FAST_OFF


# --- DRF: serializers --------------------------------------------------------------------------


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
        if self._plain_string and type(value) is decimal.Decimal and fast("decimal"):
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


class FastSerializerMixin:
    """DRF's ModelSerializer with a leaner read (mixed into ``tradingsite.api.serializers.
    ModelSerializer``).

    Two costs of DRF's that grow with every request, not with what it asks:

    - ``ModelSerializer.get_fields`` builds each field from the model's (its kwargs,
      validators, choices) for every serializer made, so on every request. The fields depend
      on the class alone: they are built once per class here, and each serializer gets copies
      (see ``_fresh``).
    - ``Serializer.to_representation`` walks ``fields`` anew for every row: a generator over
      the fields, the generic ``fields.get_attribute`` (a ``Mapping`` check and a callable
      check per attribute) and a ``PKOnlyObject`` check, 850 times for a listing page of 50
      rows of 17 fields. Here each serializer (a listing's child is one serializer for all its
      rows) works out once which fields read a plain attribute of the row; those are read with
      ``getattr`` and handed to the field's own ``to_representation``. Everything else
      (relations, dotted sources, callables, a missing attribute, a row that is not a model
      instance) goes through DRF's own code, so the output is exactly DRF's.
    """

    _built_fields = {}  # serializer class: its fields as get_fields built them, never bound

    def get_fields(self):
        if not fast("fields"):
            return super().get_fields()
        cls = type(self)
        if cls not in self._built_fields:
            self._built_fields[cls] = super().get_fields()
        return {name: _fresh(field) for name, field in self._built_fields[cls].items()}

    @cached_property
    def _reading(self):
        """(name, attribute or None, field, its to_representation) of each readable field."""
        return [
            (field.field_name, _attribute(field), field, field.to_representation)
            for field in self._readable_fields
        ]

    def to_representation(self, instance):
        if not fast("rows") or not isinstance(instance, models.Model):
            return super().to_representation(instance)
        ret = {}
        for name, attribute, field, represent in self._reading:
            if attribute:
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


# --- django-filter ----------------------------------------------------------------------------


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
        if not fast("filters"):
            return copy.deepcopy(dict(self), memo)
        copies = {}
        for name, declared in self.items():
            copies[name] = filter_ = copy.copy(declared)
            if declared.method is not None:
                filter_.method = declared.method
        return copies


class FastFilterSetMixin:
    """django-filter's FilterSet made cheaper per request (mixed into ``tradingsite.api.
    filters.FilterSet``): its filters are copied shallowly (``_Filters``), and its form class
    is made once per filterset class.

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
        if not fast("filter_forms"):
            return super().get_form_class()
        cls = type(self)
        if cls in self._form_classes:
            return self._form_classes[cls]
        form_class = super().get_form_class()
        if self.filters.keys() == self.base_filters.keys() and not any(
            isinstance(declared, QuerySetRequestMixin) for declared in self.filters.values()
        ):
            self._form_classes[cls] = form_class
        return form_class


# --- DRF: token authentication ----------------------------------------------------------------


_KEY = "token key"  # a stand-in parameter while the query is compiled


class _TokenRead:
    """The SQL that reads a token and its user (DRF's ``select_related("user").get(key=key)``,
    compiled by the ORM), and how to make the two instances of its row, as the ORM's own
    iterator makes them (``Model.from_db``, then the relation's caches both ways)."""

    def __init__(self, model, alias):
        query = model.objects.select_related("user").filter(key=_KEY).query
        compiler = query.get_compiler(using=alias)
        self.sql, params = compiler.as_sql()
        self.user_field = model._meta.get_field("user")
        self.token_model, self.user_model = model, self.user_field.related_model
        self.token_columns = [field.attname for field in model._meta.concrete_fields]
        self.user_columns = [field.attname for field in self.user_model._meta.concrete_fields]
        expressions = [expression for expression, *_ in compiler.select]
        selected = [getattr(expression, "target", None) for expression in expressions]
        self.usable = (
            tuple(params) == (_KEY,)
            and [getattr(field, "attname", None) for field in selected]
            == self.token_columns + self.user_columns
            and [getattr(field, "model", None) for field in selected]
            == [model] * len(self.token_columns) + [self.user_model] * len(self.user_columns)
            # The columns come as the models take them: no conversion (PostgreSQL's case;
            # SQLite converts its booleans and date-times, and keeps DRF's way).
            and not compiler.get_converters(expressions)
        )
        self.alias = alias

    def __call__(self, key):
        """The token of ``key`` with its user, or None."""
        with connections[self.alias].cursor() as cursor:
            cursor.execute(self.sql, [key])
            row = cursor.fetchone()
        if row is None:
            return None
        split = len(self.token_columns)
        token = self.token_model.from_db(self.alias, self.token_columns, row[:split])
        user = self.user_model.from_db(self.alias, self.user_columns, row[split:])
        self.user_field.set_cached_value(token, user)
        if self.user_field.unique:  # one token per user: the user knows its token too
            self.user_field.remote_field.set_cached_value(user, token)
        return token


class FastTokenMixin:
    """DRF's token authentication with its query compiled once (mixed into
    ``tradingsite.api.authentication.TokenAuthentication``): the same query, instances,
    refusals and messages.

    DRF builds and compiles the same ORM query on every request, two thirds of authentication's
    time (0.3 of 0.5 ms) and a tenth of a listing's. Here the ORM compiles it once per token
    model and database, and every request runs that SQL with its key. Where the query is not
    the plain one this relies on (its columns need converting, as on SQLite), it is DRF's.
    """

    _reads = {}  # (token model, database alias): its _TokenRead

    def authenticate_credentials(self, key):
        model = self.get_model()
        alias = router.db_for_read(model)
        read = self._reads.get((model, alias))
        if read is None:
            read = self._reads[model, alias] = _TokenRead(model, alias)
        if not read.usable or not fast("token"):
            return super().authenticate_credentials(key)
        token = read(key)
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return (token.user, token)


# --- Django: querysets and the timestamptz loader --------------------------------------------


def built_once(selector):
    """A selector without arguments whose queryset is built once and cloned for every call.

    Building a queryset is not free: an annotation's subquery or join is resolved when it is
    added, a few tenths of a millisecond for a listing's selector, on every request. A queryset
    is a template until it is evaluated, so the selector's is kept (never evaluated) and each
    call gets ``.all()`` of it, a fresh queryset, as DRF does with a view's ``queryset``.
    """
    template = cache(selector)

    @wraps(selector)
    def fresh():
        return template().all() if fast("selectors") else selector()

    return fresh


class TimestamptzLoader(Loader):
    """psycopg's registered ``timestamptz`` loader, its tzinfo replaced as Django's does."""

    timezone = None  # the connection's (None: naive date-times, as with USE_TZ = False)
    psycopg_loader = adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)

    def __init__(self, oid, context=None):
        super().__init__(oid, context)
        self._load = self.psycopg_loader(oid, context).load

    def load(self, data):
        return self._load(data).replace(tzinfo=self.timezone)


@cache
def timestamptz_loader(timezone):
    return type(
        "TimestamptzLoader", (TimestamptzLoader,), {"timezone": timezone, "__module__": __name__}
    )
