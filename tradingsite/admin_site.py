"""The site's admin: Django's, refusing a query parameter with a NUL character anywhere, and
showing a date drill-down past the calendar as the bad parameter it is, on every admin
(django_celery_beat's and auth's too).

PostgreSQL's text takes no NUL ("\\x00"): a list filter given one (``?exchange=%00``) reached
the database and failed there, a 500. No admin page has a use for one, so every admin view
answers a 400 naming the parameter before it reads the request: list filters, search
(``?q=``), the date drill-down and the parameters of pages yet to be written alike.
"""

from functools import wraps

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.contrib.admin.views.main import ERROR_FLAG
from django.http import HttpResponseBadRequest, HttpResponseRedirect

DRILL_DOWN = ("__year", "__month", "__day")


def nul_parameter_refusal(query):
    """Why the query string ``query`` (a QueryDict) is refused, naming the parameter, or None."""
    for name, values in query.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            return f"The query parameter {name!r} contains a NUL character, which none takes."
    return None


class TradingAdminSite(admin.AdminSite):
    # The navigation sidebar took a fifth of a laptop's screen from every table; the home
    # page and the breadcrumbs lead everywhere it did.
    enable_nav_sidebar = False
    # Celery beat's one-off and solar schedules, which no strategy uses: off the index (their
    # pages stay reachable by address).
    hidden_from_index = {("django_celery_beat", "clockedschedule"),
                         ("django_celery_beat", "solarschedule")}  # fmt: skip

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        for app in apps:
            app["models"] = [
                model for model in app["models"]
                if (app["app_label"], model["object_name"].lower()) not in self.hidden_from_index
            ]  # fmt: skip
        return apps

    def admin_view(self, view, cacheable=False):
        @wraps(view)
        def checked(request, *args, **kwargs):
            refusal = nul_parameter_refusal(request.GET)
            if refusal:
                return HttpResponseBadRequest(refusal, content_type="text/plain; charset=utf-8")
            try:
                return view(request, *args, **kwargs)
            except (ValueError, OverflowError):
                # Trap: Django's date drill-down makes a date of ?x__year=&x__month=&x__day=
                # and checks only that ValueError; the end of the chosen period (year 9999
                # + 1) and a year past a C long (OverflowError) escaped as 500s. A bad
                # parameter, as a year of 0 is: the list says so, as Django does (?e=1).
                if not any(name.endswith(DRILL_DOWN) for name in request.GET):
                    raise
                return HttpResponseRedirect(f"{request.path}?{ERROR_FLAG}=1")

        return super().admin_view(checked, cacheable)


class TradingAdminConfig(AdminConfig):
    """``django.contrib.admin`` with ``TradingAdminSite`` as ``admin.site``."""

    default_site = "tradingsite.admin_site.TradingAdminSite"
