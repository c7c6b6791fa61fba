"""Generic API test cases, after NetBox's ``utilities/testing/api.py``, for pytest-django.

A resource's test subclasses the cases it needs and declares what differs::

    class TestCodes(APIViewTestCases.GetObject, APIViewTestCases.ListObjects, ...):
        basename = "code"              # router basename: URL names api:code-list / -detail
        model = Code
        expected_fields = {"id", "symbol", ...}
        list_queries = 2               # queries of one list request, whatever the page size

        def make(self):                # one stored object
            return CodeFactory()

        def create_data(self):         # a valid POST body
            return {"symbol": "AAPL", "conid": 265598}

Every case checks the refusals too: anonymous 401, a read-only user 403 on writes,
bad input 400 naming the field, an unknown id 404.
"""

from decimal import Decimal, InvalidOperation

import pytest
from django.contrib.auth.models import Group
from django.db import models
from django.urls import reverse
from django_filters import filters
from rest_framework.test import APIClient

from tradingsite.api.filters import IdFilter
from tradingsite.api.permissions import READONLY_GROUP

UNKNOWN_ID = 2_000_000_000


def results(response):
    """The objects of a (paginated or plain) list response."""
    body = response.json()
    return body["results"] if isinstance(body, dict) else body


def ids(response):
    return [row["id"] for row in results(response)]


def _number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def assert_matches(body, expected):
    """Every key of ``expected`` is in ``body`` with the same value; decimals, which the API
    writes as strings ("10.0000"), compare as numbers."""
    for key, want in expected.items():
        assert key in body, f"{key} missing from {sorted(body)}"
        got = body[key]
        if isinstance(got, str) and _number(got) is not None and _number(want) is not None:
            assert _number(got) == _number(want), f"{key}: {got!r} != {want!r}"
        else:
            assert got == want, f"{key}: {got!r} != {want!r}"


def assert_refused(response, status, *fields):
    """A refusal with ``status`` whose body says why, naming each of ``fields``."""
    assert response.status_code == status, response.content
    body = response.json()
    assert body.get("detail"), body
    for field in fields:
        assert field in body.get("errors", {}), f"{field} not named in {body}"


class SecureAPIClient(APIClient):
    """Requests over https, as the site is served (SECURE_SSL_REDIRECT is on unless DEBUG)."""

    def generic(self, method, path, data="", content_type="application/octet-stream",
                secure=True, **extra):  # fmt: skip
        return super().generic(method, path, data, content_type, secure, **extra)


def _filterable(field):
    """A column or many-to-many of the model itself (no reverse relation), not JSON or text."""
    if field.auto_created and not getattr(field, "primary_key", False):
        return False
    if not (field.concrete or field.many_to_many):
        return False
    return not isinstance(field, (models.JSONField, models.TextField))


class APITestCase:
    basename = None
    model = None
    expected_fields = frozenset()

    def make(self):
        raise NotImplementedError(f"{type(self).__name__} must make one stored {self.model}")

    def list_url(self):
        return reverse(f"api:{self.basename}-list")

    def detail_url(self, obj):
        return reverse(f"api:{self.basename}-detail", kwargs={"pk": getattr(obj, "pk", obj)})

    @pytest.fixture(autouse=True)
    def _database(self, db):
        """Every API test reads and writes the real database."""

    @pytest.fixture
    def staff(self, django_user_model):
        return django_user_model.objects.create_user("staff", is_staff=True)

    @pytest.fixture
    def reader(self, django_user_model):
        user = django_user_model.objects.create_user("reader")
        user.groups.add(Group.objects.get_or_create(name=READONLY_GROUP)[0])
        return user

    @pytest.fixture
    def anonymous(self):
        return SecureAPIClient()

    @pytest.fixture
    def staff_client(self, staff):
        client = SecureAPIClient()
        client.force_authenticate(staff)
        return client

    @pytest.fixture
    def reader_client(self, reader):
        client = SecureAPIClient()
        client.force_authenticate(reader)
        return client


class APIViewTestCases:
    class GetObject(APITestCase):
        def test_get_object_refused_to_anonymous(self, anonymous):
            response = anonymous.get(self.detail_url(self.make()))
            assert_refused(response, 401)

        def test_get_object(self, reader_client):
            obj = self.make()
            response = reader_client.get(self.detail_url(obj))
            assert response.status_code == 200, response.content
            assert set(response.json()) == set(self.expected_fields)
            assert response.json()["id"] == obj.pk

        def test_get_unknown_object_is_404(self, reader_client):
            assert_refused(reader_client.get(self.detail_url(UNKNOWN_ID)), 404)

    class ListObjects(APITestCase):
        #: queries of one list request, whatever the number of rows on the page
        list_queries = None
        #: the keys of a row in a listing, when they differ from the detail's
        list_fields = None

        def test_list_refused_to_anonymous(self, anonymous):
            self.make()
            assert_refused(anonymous.get(self.list_url()), 401)

        def test_list_objects(self, reader_client):
            made = {self.make().pk for _ in range(3)}
            response = reader_client.get(self.list_url())
            assert response.status_code == 200, response.content
            assert made <= set(ids(response))
            assert len(ids(response)) == self.model.objects.count()  # rows made by migrations
            fields = set(self.list_fields or self.expected_fields)
            assert all(set(row) == fields for row in results(response))

        def test_list_query_count_does_not_grow(self, reader_client, django_assert_num_queries):
            already = self.model.objects.count()  # rows made by migrations
            self.make()
            with django_assert_num_queries(self.list_queries):
                assert len(results(reader_client.get(self.list_url()))) == already + 1
            for _ in range(19):
                self.make()
            with django_assert_num_queries(self.list_queries):
                assert len(results(reader_client.get(self.list_url()))) == already + 20

    class CreateObject(APITestCase):
        #: (changes to create_data, the field the 400 must name) pairs
        invalid_create_data = ()

        def create_data(self):
            raise NotImplementedError

        def test_create_refused_to_anonymous(self, anonymous):
            before = self.model.objects.count()
            response = anonymous.post(self.list_url(), self.create_data(), format="json")
            assert_refused(response, 401)
            assert self.model.objects.count() == before

        def test_create_refused_to_reader(self, reader_client):
            before = self.model.objects.count()
            response = reader_client.post(self.list_url(), self.create_data(), format="json")
            assert_refused(response, 403)
            assert self.model.objects.count() == before

        def test_create_object(self, staff_client):
            data = self.create_data()
            before = self.model.objects.count()
            response = staff_client.post(self.list_url(), data, format="json")
            assert response.status_code == 201, response.content
            assert set(response.json()) == set(self.expected_fields)
            assert_matches(response.json(), data)
            assert self.model.objects.count() == before + 1
            stored = staff_client.get(self.detail_url(response.json()["id"]))
            assert stored.json() == response.json()

        def test_create_bad_input_names_the_field(self, staff_client):
            assert self.invalid_create_data, "declare invalid_create_data"
            for changes, field in self.invalid_create_data:
                before = self.model.objects.count()
                data = {**self.create_data(), **changes}
                response = staff_client.post(self.list_url(), data, format="json")
                assert_refused(response, 400, field)
                assert self.model.objects.count() == before

    class UpdateObject(APITestCase):
        #: (changes, the field the 400 must name) pairs, sent as a PATCH
        invalid_update_data = ()

        def update_data(self, obj):
            raise NotImplementedError

        def test_update_refused_to_reader(self, reader_client, staff_client):
            obj = self.make()
            before = staff_client.get(self.detail_url(obj)).json()
            response = reader_client.patch(
                self.detail_url(obj), self.update_data(obj), format="json"
            )
            assert_refused(response, 403)
            assert staff_client.get(self.detail_url(obj)).json() == before

        def test_update_object(self, staff_client):
            obj = self.make()
            data = self.update_data(obj)
            response = staff_client.patch(self.detail_url(obj), data, format="json")
            assert response.status_code == 200, response.content
            assert_matches(response.json(), data)
            assert staff_client.get(self.detail_url(obj)).json() == response.json()

        def test_update_bad_input_names_the_field(self, staff_client):
            assert self.invalid_update_data, "declare invalid_update_data"
            obj = self.make()
            before = staff_client.get(self.detail_url(obj)).json()
            for changes, field in self.invalid_update_data:
                response = staff_client.patch(self.detail_url(obj), changes, format="json")
                assert_refused(response, 400, field)
                assert staff_client.get(self.detail_url(obj)).json() == before

        def test_update_unknown_object_is_404(self, staff_client):
            response = staff_client.patch(self.detail_url(UNKNOWN_ID), {}, format="json")
            assert_refused(response, 404)

    class DeleteObject(APITestCase):
        def test_delete_refused_to_reader(self, reader_client):
            obj = self.make()
            assert_refused(reader_client.delete(self.detail_url(obj)), 403)
            assert self.model.objects.filter(pk=obj.pk).exists()

        def test_delete_object(self, staff_client):
            obj = self.make()
            assert staff_client.delete(self.detail_url(obj)).status_code == 204
            assert not self.model.objects.filter(pk=obj.pk).exists()
            assert_refused(staff_client.get(self.detail_url(obj)), 404)

        def test_delete_unknown_object_is_404(self, staff_client):
            assert_refused(staff_client.delete(self.detail_url(UNKNOWN_ID)), 404)

    class ReadOnly(APITestCase):
        """A resource the API only reads: every write method is refused, even to staff."""

        def test_writes_are_not_allowed(self, staff_client):
            obj = self.make()
            assert staff_client.post(self.list_url(), {}, format="json").status_code == 405
            for method in (staff_client.put, staff_client.patch, staff_client.delete):
                assert method(self.detail_url(obj), {}, format="json").status_code == 405
            assert self.model.objects.filter(pk=obj.pk).exists()

    class Filters(APITestCase):
        """The filterset covers the model (as NetBox's ``test_missing_filters``) and refuses
        a malformed value with a 400 naming the filter."""

        filterset = None
        #: model fields with no filter on purpose (JSON and long text are never filtered)
        filter_ignore = frozenset()

        def test_every_model_field_has_a_filter(self):
            covered = set()
            for declared in self.filterset.base_filters.values():
                name = declared.field_name.split("__")[0]
                covered.update({name, name.removesuffix("_id")})
            missing = [
                field.name
                for field in self.model._meta.get_fields()
                if _filterable(field)
                and field.name not in self.filter_ignore
                and field.name not in covered
            ]
            assert not missing, f"{self.filterset.__name__} has no filter for {missing}"

        def test_malformed_filter_values_are_400_naming_the_filter(self, reader_client):
            strict = (IdFilter, filters.DateFilter, filters.DateTimeFilter, filters.ChoiceFilter)
            checked = 0
            for name, declared in self.filterset.base_filters.items():
                if isinstance(declared, strict):
                    response = reader_client.get(self.list_url(), {name: "not-a-value"})
                    assert_refused(response, 400, name)
                    checked += 1
            assert checked

    class ModelViewSet(GetObject, ListObjects, CreateObject, UpdateObject, DeleteObject, Filters):
        """A resource the API reads and writes (NetBox's ``APIViewTestCase``)."""

    class ReadOnlyViewSet(GetObject, ListObjects, ReadOnly, Filters):
        """A resource the API only reads."""
