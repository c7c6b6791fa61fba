from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import PerformanceViewSet, StrategyPerformanceView, StrategyPnlView

router = SimpleRouter()
router.register("performance", PerformanceViewSet, basename="performance")

extra_urlpatterns = [
    path(
        "strategies/<int:pk>/performance/",
        StrategyPerformanceView.as_view(),
        name="strategy-performance",
    ),
    path("strategies/<int:pk>/pnl/", StrategyPnlView.as_view(), name="strategy-pnl"),
]
