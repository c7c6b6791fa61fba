import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingsite.settings")

application = get_asgi_application()

from tradingsite.startup import require_ready_database, require_secret_key  # noqa: E402

require_secret_key()
require_ready_database()
