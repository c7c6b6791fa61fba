"""Generated hostile requests over every registered admin: each change list's query parameters
(list filters, the date drill-down, search, Django's own) with values a careless user or an
attacker sends, and each admin form's JSON fields with JSON that cannot be stored. No answer
may be a 500.

The parameters and fields are read from the registered admins (``tradingsite.testing.admin``),
so a new admin, filter or JSON field is part of the check as soon as it exists.
"""

import pytest
from django import forms
from django.test import RequestFactory

from strategies.tests.factories import StrategyFactory
from tradingsite.admin_tools import changelist_url
from tradingsite.testing.admin import CHANGELIST_VARIABLES, changelist_parameters, changelists
from tradingsite.testing.factories import (
    AgentMessageFactory,
    MarketDataFactory,
    WorkflowMetricsFactory,
    make_decision,
    make_fill,
)
from tradingsite.testing.hostile import DATE_PARTS, JSON_TEXTS, QUERY_VALUES, SHORT_QUERY_VALUES

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.fuzz,
    # A date filter given a date alone (0001-01-01) makes a naive date-time, and says so.
    pytest.mark.filterwarnings("ignore:DateTimeField .* received a naive datetime"),
]

ADMINS = changelists()
LABELS = [model._meta.label for model, _ in ADMINS]


def drill_downs(field):
    """Each part of a date drill-down, the parts above it well-formed."""
    for value in DATE_PARTS:
        yield {f"{field}__year": value}
        yield {f"{field}__year": "2024", f"{field}__month": value}
        yield {f"{field}__year": "2024", f"{field}__month": "2", f"{field}__day": value}


@pytest.fixture
def rows():
    """A row in each of the site's tables, so that lists, filters and drill-downs have some."""
    make_fill(decision=make_decision())
    StrategyFactory()
    AgentMessageFactory()
    MarketDataFactory()
    WorkflowMetricsFactory()


@pytest.mark.parametrize(("model", "model_admin"), ADMINS, ids=LABELS)
def test_no_query_parameter_of_a_change_list_gives_a_500(
    admin_client, admin_user, rows, model, model_admin
):
    url = changelist_url(model)
    names = changelist_parameters(model, model_admin, admin_user)
    queries = [{name: value} for name in names for value in QUERY_VALUES]
    queries += [{name: value} for name in CHANGELIST_VARIABLES for value in SHORT_QUERY_VALUES]
    if model_admin.date_hierarchy:
        queries += drill_downs(model_admin.date_hierarchy)
    failures = []
    for query in queries:
        response = admin_client.get(url, query, secure=True)
        if response.status_code >= 500:
            failures.append((query, response.status_code))
    assert not failures, failures


def json_fields(model, model_admin, user):
    request = RequestFactory().get(changelist_url(model), secure=True)
    request.user = user
    if not model_admin.has_add_permission(request):
        return []
    form = model_admin.get_form(request)
    return [name for name, field in form.base_fields.items() if isinstance(field, forms.JSONField)]


@pytest.mark.parametrize(("model", "model_admin"), ADMINS, ids=LABELS)
def test_no_json_an_admin_form_is_sent_gives_a_500_and_the_field_says_why(
    admin_client, admin_user, model, model_admin
):
    opts = model._meta
    url = f"/admin/{opts.app_label}/{opts.model_name}/add/"
    for name in json_fields(model, model_admin, admin_user):
        for text in JSON_TEXTS:
            response = admin_client.post(url, {name: text}, secure=True)
            assert response.status_code == 200, (name, text[:40], response.status_code)
            assert response.context["adminform"].form.errors.get(name), (name, text[:40])
