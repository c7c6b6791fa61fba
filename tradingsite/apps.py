from django.apps import AppConfig


class TradingSiteConfig(AppConfig):
    name = "tradingsite"
    verbose_name = "Trading site"

    def ready(self):
        from tradingsite import checks  # noqa: F401  (registers the system checks)
