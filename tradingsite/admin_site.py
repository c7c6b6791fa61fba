"""The site's admin: Django's, refusing a query parameter with a NUL character anywhere.

PostgreSQL's text takes no NUL ("\\x00"): a list filter given one (``?exchange=%00``) reached
the database and failed there, a 500. No admin page has a use for one, so every admin view
answers a 400 naming the parameter before it reads the request: list filters, search
(``?q=``), the date drill-down and the parameters of pages yet to be written alike.
"""

from functools import wraps

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpResponseBadRequest


def nul_parameter_refusal(query):
    """Why the query string ``query`` (a QueryDict) is refused, naming the parameter, or None."""
    for name, values in query.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            return f"The query parameter {name!r} contains a NUL character, which none takes."
    return None


class TradingAdminSite(admin.AdminSite):
    def admin_view(self, view, cacheable=False):
        @wraps(view)
        def refusing_nul(request, *args, **kwargs):
            refusal = nul_parameter_refusal(request.GET)
            if refusal:
                return HttpResponseBadRequest(refusal, content_type="text/plain; charset=utf-8")
            return view(request, *args, **kwargs)

        return super().admin_view(refusing_nul, cacheable)


class TradingAdminConfig(AdminConfig):
    """``django.contrib.admin`` with ``TradingAdminSite`` as ``admin.site``."""

    default_site = "tradingsite.admin_site.TradingAdminSite"
