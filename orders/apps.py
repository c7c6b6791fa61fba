from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"

    def ready(self):
        from tradingsite.broker import on_connect

        from .services import OrderEventListener

        # Every new broker connection of this process applies IB's order events as they come.
        on_connect(lambda broker: broker.listen(OrderEventListener()))
