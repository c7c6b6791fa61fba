from rest_framework.routers import SimpleRouter

from .views import OrderViewSet, PositionViewSet, TradeViewSet

router = SimpleRouter()
router.register("orders", OrderViewSet, basename="order")
router.register("trades", TradeViewSet, basename="trade")
router.register("positions", PositionViewSet, basename="position")

urlpatterns = router.urls
