from decimal import Decimal

import factory

from marketdata.tests.factories import CodeFactory
from orders.models import Order, OrderSide, OrderType


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    instrument = factory.SubFactory(CodeFactory)
    side = OrderSide.BUY
    quantity = Decimal("10")
    price = Decimal("100")
    order_type = OrderType.LMT
