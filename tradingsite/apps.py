from django.apps import AppConfig, apps


class TradingSiteConfig(AppConfig):
    name = "tradingsite"
    verbose_name = "Trading site"

    def ready(self):
        from django.db.backends.signals import connection_created
        from django.db.models.signals import post_migrate

        # Imported once the app registry is ready: these modules import models.
        from tradingsite import checks  # noqa: F401  (registers the system checks)
        from tradingsite.database import timestamptz_adapters_register
        from tradingsite.schedules import periodic_jobs_sync

        connection_created.connect(timestamptz_adapters_register)

        # post_migrate is sent only for apps with models: hang it on the beat tables' app.
        post_migrate.connect(periodic_jobs_sync, sender=apps.get_app_config("django_celery_beat"))
