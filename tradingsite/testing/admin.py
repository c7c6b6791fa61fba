"""What every admin change list takes in its query string, read from the registered admins,
so that a check over "every list filter" follows the admins as they change."""

from django.contrib import admin
from django.contrib.admin.filters import FieldListFilter, SimpleListFilter
from django.contrib.admin.utils import get_fields_from_path
from django.contrib.admin.views.main import (
    ALL_VAR,
    IS_FACETS_VAR,
    IS_POPUP_VAR,
    ORDER_VAR,
    PAGE_VAR,
    SEARCH_VAR,
    TO_FIELD_VAR,
)
from django.test import RequestFactory

from tradingsite.admin_tools import changelist_url

#: ordering, page, show all, popup, to_field, facets
CHANGELIST_VARIABLES = (ORDER_VAR, PAGE_VAR, ALL_VAR, IS_POPUP_VAR, TO_FIELD_VAR, IS_FACETS_VAR)


def changelists():
    """(model, its ModelAdmin) of every registered admin (each has a change list)."""
    return list(admin.site._registry.items())


def changelist_parameters(model, model_admin, user):
    """The query parameters of ``model``'s change list: each list filter's (whether or not the
    rows stored now make Django show it), the date drill-down's and search; Django's own,
    which every change list has, are ``CHANGELIST_VARIABLES``."""
    request = RequestFactory().get(changelist_url(model), secure=True)
    request.user = user
    names = []
    for list_filter in model_admin.get_list_filter(request):
        if isinstance(list_filter, type) and issubclass(list_filter, SimpleListFilter):
            names.append(list_filter.parameter_name)
            continue
        if isinstance(list_filter, (tuple, list)):
            field_path, make = list_filter
        else:
            field_path, make = list_filter, FieldListFilter.create
        field = get_fields_from_path(model, field_path)[-1]
        names += make(field, request, {}, model, model_admin, field_path).expected_parameters()
    if model_admin.date_hierarchy:
        names += [f"{model_admin.date_hierarchy}__{part}" for part in ("year", "month", "day")]
    if model_admin.get_search_fields(request):
        names.append(SEARCH_VAR)
    return names
