import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingsite.settings")

application = get_asgi_application()

from tradingsite.startup import require_ready_database  # noqa: E402

require_ready_database()
