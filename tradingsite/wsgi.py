import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingsite.settings")

application = get_wsgi_application()

from tradingsite.startup import require_ready_database, require_secret_key  # noqa: E402

# The web process refuses to start on a database that is behind its migrations or off-spec.
require_secret_key()
require_ready_database()
