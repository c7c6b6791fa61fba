from rest_framework.routers import SimpleRouter

from .views import DecisionViewSet, StrategyViewSet

router = SimpleRouter()
router.register("strategies", StrategyViewSet, basename="strategy")
router.register("decisions", DecisionViewSet, basename="decision")

urlpatterns = router.urls
