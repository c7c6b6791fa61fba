from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import (
    AccountView,
    OrderViewSet,
    PositionViewSet,
    TradeViewSet,
    TradingActionViewSet,
    TradingSessionViewSet,
)

router = SimpleRouter()
router.register("orders", OrderViewSet, basename="order")
router.register("trades", TradeViewSet, basename="trade")
router.register("positions", PositionViewSet, basename="position")
router.register("trading-actions", TradingActionViewSet, basename="tradingaction")
router.register("trading-sessions", TradingSessionViewSet, basename="tradingsession")

urlpatterns = router.urls

extra_urlpatterns = [path("account/", AccountView.as_view(), name="account")]
