"""The admin site: what every admin page shares."""

import pytest

from tradingsite.admin_tools import changelist_url
from tradingsite.testing.admin import CHANGELIST_VARIABLES, changelist_parameters, changelists

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("model", "model_admin"), changelists(), ids=[model._meta.label for model, _ in changelists()]
)
def test_a_nul_in_any_query_parameter_of_a_change_list_is_a_400_naming_it(
    admin_client, admin_user, model, model_admin
):
    url = changelist_url(model)
    names = [*changelist_parameters(model, model_admin, admin_user), *CHANGELIST_VARIABLES]
    for name in names:
        response = admin_client.get(url, {name: "a\x00b"}, secure=True)
        assert response.status_code == 400, (url, name)
        assert response.content.decode() == (
            f"The query parameter {name!r} contains a NUL character, which none takes."
        )
    response = admin_client.get(f"{url}?x%00=1", secure=True)
    assert response.status_code == 400
    assert "'x\\x00'" in response.content.decode()


@pytest.mark.parametrize(
    "url",
    [
        "/admin/marketdata/code/?exchange=%00",
        "/admin/marketdata/code/?q=%00",
        "/admin/orders/order/?status=%00&side=BUY",
        "/admin/?x=%00",
        "/admin/strategies/strategy/1/change/?_changelist_filters=%00",
    ],
)
def test_the_issues_urls_and_any_admin_page_refuse_a_nul(admin_client, url):
    response = admin_client.get(url, secure=True)
    assert response.status_code == 400
    assert "contains a NUL character" in response.content.decode()


def test_a_change_list_still_filters_and_searches(admin_client):
    response = admin_client.get("/admin/marketdata/code/?exchange=SMART&q=AAPL", secure=True)
    assert response.status_code == 200


def test_calm_screens_a_favicon_and_an_index_without_celerys_unused_schedules(admin_client):
    index = admin_client.get("/admin/", secure=True).content.decode()
    assert 'rel="icon" type="image/svg+xml" href="/static/tradingsite/favicon.svg"' in index
    assert "Periodic tasks" in index and "Crontabs" in index
    assert "Clocked" not in index and "Solar events" not in index
    # still reachable by address
    for model in ("clockedschedule", "solarschedule"):
        url = f"/admin/django_celery_beat/{model}/"
        assert admin_client.get(url, secure=True).status_code == 200
    response = admin_client.get("/favicon.ico", secure=True)
    assert response.status_code == 302 and response["Location"].endswith("favicon.svg")
    assert 'id="nav-sidebar"' not in index  # the tables get the screen's width


def test_libraries_log_at_warning_unless_log_level_is_set():
    import logging

    from django.conf import settings

    if settings.LOG_LEVEL:  # the run set LOG_LEVEL: it applies to the libraries too
        assert logging.getLogger("ib_insync").level == logging.getLevelName(settings.LOG_LEVEL)
        return
    for name in ("ib_insync", "celery.beat", "autogen_core"):
        assert logging.getLogger(name).level == logging.WARNING
    assert logging.getLogger().level == logging.INFO
