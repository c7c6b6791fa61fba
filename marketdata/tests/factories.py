import factory

from marketdata.models import Code


class CodeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Code

    symbol = factory.Sequence(lambda n: f"SYM{n}")
    conid = factory.Sequence(lambda n: 900000 + n)
    exchange = "SMART"
