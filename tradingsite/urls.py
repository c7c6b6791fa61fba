from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/dashboard/", include("tradingsite.dashboard")),
    path("admin/", admin.site.urls),
    path("api/", include("tradingsite.api.urls")),
]
