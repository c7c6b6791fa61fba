import factory

from strategies.models import Strategy, StrategyType


class StrategyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Strategy

    name = factory.Sequence(lambda n: f"Strategy {n}")
    type = StrategyType.TWO_INDICATOR
    param = factory.LazyFunction(
        lambda: {"period_1": "1 Y", "bar_1": "1 day", "period_2": "2 Y", "bar_2": "1 week"}
    )
