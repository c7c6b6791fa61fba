from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import (
    DecisionViewSet,
    StrategyViewSet,
    TradingKillView,
    TradingResumeView,
    TradingView,
)

router = SimpleRouter()
router.register("strategies", StrategyViewSet, basename="strategy")
router.register("decisions", DecisionViewSet, basename="decision")

urlpatterns = router.urls

extra_urlpatterns = [
    path("trading/", TradingView.as_view(), name="trading"),
    path("trading/kill/", TradingKillView.as_view(), name="trading-kill"),
    path("trading/resume/", TradingResumeView.as_view(), name="trading-resume"),
]
