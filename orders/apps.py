from django.apps import AppConfig

from tradingsite.broker import on_connect


class OrdersConfig(AppConfig):
    name = "orders"

    def ready(self):
        # Imported once the app registry is ready: the services import the models.
        from .services import OrderEventListener

        # Every new broker connection of this process applies IB's order events as they come.
        on_connect(lambda broker: broker.listen(OrderEventListener()))
