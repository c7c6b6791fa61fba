from django.urls import path
from rest_framework.routers import SimpleRouter

from .views import AccountView, OrderViewSet, PositionViewSet, TradeViewSet

router = SimpleRouter()
router.register("orders", OrderViewSet, basename="order")
router.register("trades", TradeViewSet, basename="trade")
router.register("positions", PositionViewSet, basename="position")

urlpatterns = router.urls

extra_urlpatterns = [path("account/", AccountView.as_view(), name="account")]
