from rest_framework.routers import SimpleRouter

from .views import CodeViewSet, MarketDataViewSet

router = SimpleRouter()
router.register("codes", CodeViewSet, basename="code")
router.register("market-data", MarketDataViewSet, basename="market-data")

urlpatterns = router.urls
