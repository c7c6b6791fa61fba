from django.contrib import admin
from django.http import HttpResponseRedirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    # The site is the admin (and its dashboard) and the API: its address opens the dashboard,
    # which asks to sign in first.
    path("", RedirectView.as_view(pattern_name="dashboard", permanent=False)),
    # Browsers ask for /favicon.ico whatever the page says.
    path("favicon.ico", lambda request: HttpResponseRedirect(static("tradingsite/favicon.svg"))),
    path("admin/dashboard/", include("tradingsite.dashboard")),
    path("admin/", admin.site.urls),
    path("api/", include("tradingsite.api.urls")),
]
