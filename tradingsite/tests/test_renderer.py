"""The API's orjson renderer writes the bytes DRF's JSONRenderer writes."""

import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.utils.translation import gettext_lazy
from rest_framework.exceptions import ErrorDetail
from rest_framework.renderers import JSONRenderer as DRFJSONRenderer
from rest_framework.utils.serializer_helpers import ReturnDict, ReturnList

from tradingsite.api.renderers import JSONRenderer

DATA = ReturnDict(
    {
        "next": "https://testserver/api/orders/?cursor=cD0yMDI2",
        "previous": None,
        "results": ReturnList(
            [
                {
                    "id": 7, "price": "189.2500", "quantity": Decimal("10.5"), "ok": True,
                    "created_at": datetime(2026, 11, 23, 13, 5, 1, 120000, tzinfo=UTC),
                    "updated_at": datetime(2026, 11, 23, 13, 5, 1, tzinfo=UTC),
                    "day": date(2026, 11, 23), "at": time(9, 30), "held": timedelta(hours=2),
                    "text": "Überkauft — RSI 71\u2028next line\u2029", "ratio": -0.125,
                    "task_id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
                    "label": gettext_lazy("This field is required."),
                    "errors": {"price": [ErrorDetail("Ensure this value is greater than 0.")]},
                    "by_id": {1: "one"}, "empty": [], "big": 2**53 + 1,
                },
            ],
            serializer=None,
        ),
    },
    serializer=None,
)  # fmt: skip


def test_the_same_bytes_as_drf():
    ours = JSONRenderer().render(DATA, "application/json")
    assert ours == DRFJSONRenderer().render(DATA, "application/json")
    assert b'"created_at":"2026-11-23T13:05:01.120000Z"' in ours
    assert b"\\u2028next line\\u2029" in ours


def test_what_orjson_refuses_drf_writes():
    data = {"default_params": {"huge": 2**70, "small": -(2**64)}}
    assert JSONRenderer().render(data) == DRFJSONRenderer().render(data)
    assert JSONRenderer().render(data) == b'{"default_params":{"huge":%d,"small":%d}}' % (
        2**70,
        -(2**64),
    )


def test_pretty_printing_is_drfs():
    ours = JSONRenderer().render(DATA, "application/json; indent=4")
    assert ours == DRFJSONRenderer().render(DATA, "application/json; indent=4")
    assert ours.startswith(b'{\n    "next"')
    assert JSONRenderer().render(None) == b""


def test_api_responses_go_through_it(client, django_user_model):
    user = django_user_model.objects.create_user("reader", password="pw-reader-1")
    client.force_login(user)
    response = client.get("/api/orders/", secure=True)
    assert response.status_code == 200
    assert isinstance(response.accepted_renderer, JSONRenderer)
    assert response.json() == {"next": None, "previous": None, "results": []}
