"""Every app's API under /api/, the OpenAPI schema and its interactive docs.

The docs page loads Swagger UI from the ``drf-spectacular-sidecar`` package, served here, so
nothing is fetched from a CDN.
"""

from pathlib import Path

import drf_spectacular_sidecar
from django.http import JsonResponse
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from marketdata.api.urls import router as marketdata_router
from orders.api.urls import extra_urlpatterns as orders_extra
from orders.api.urls import router as orders_router
from performance.api.urls import extra_urlpatterns as performance_extra
from performance.api.urls import router as performance_router
from strategies.api.urls import extra_urlpatterns as strategies_extra
from strategies.api.urls import router as strategies_router
from workflows.api.urls import extra_urlpatterns as workflows_extra
from workflows.api.urls import router as workflows_router

SIDECAR_DIR = Path(drf_spectacular_sidecar.__file__).parent / "static" / "drf_spectacular_sidecar"

router = DefaultRouter()
for app_router in (
    marketdata_router, strategies_router, orders_router, workflows_router, performance_router,
):  # fmt: skip
    router.registry.extend(app_router.registry)


@csrf_exempt  # as every API view: a write to no resource is a 404, not a CSRF refusal
def not_found(request, *args, **kwargs):
    """Any other URL under /api/ (a malformed id included) answers in JSON, as the API does."""
    return JsonResponse({"detail": "Not found."}, status=404)


app_name = "api"
urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    re_path(
        r"^docs/assets/(?P<path>swagger-ui-dist/[\w.-]+)$",
        serve,
        {"document_root": SIDECAR_DIR},
        name="docs-assets",
    ),
    # Anything else under the assets (a "../" included) is a 404 here, before APPEND_SLASH
    # could redirect it to the catch-all below.
    re_path(r"^docs/assets/", not_found),
    *workflows_extra,
    *orders_extra,
    *strategies_extra,
    *performance_extra,
    path("", include(router.urls)),
    # Paths without the trailing slash are left to APPEND_SLASH's redirect.
    re_path(r"^.*/$", not_found),
]
