"""Settings for the trading site, every one read from the environment (django-environ).

No other module reads ``os.environ``: code asks ``django.conf.settings``.
Defaults give a site that runs with no server at all (SQLite, a broker on SQLite);
production sets ``DEBUG=false`` and a ``SECRET_KEY``, and gets the secure defaults below.
"""

from decimal import Decimal
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"  # local state of the embedded defaults (SQLite files, charts)
VAR_DIR.mkdir(exist_ok=True)

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)
TESTING = env.bool("TESTING", default=False)

# With DEBUG off and no SECRET_KEY, the key stays empty: Django refuses to sign anything with
# it, the web process and runserver refuse to start (tradingsite.startup.require_secret_key),
# and `check --deploy` fails (tradingsite.E002). Commands that sign nothing (migrate,
# makemigrations, check_schema) still work.
SECRET_KEY = env("SECRET_KEY", default="")
if not SECRET_KEY and (DEBUG or TESTING):
    SECRET_KEY = "insecure-local-key-for-debug-and-tests-only"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "tradingsite.admin_site.TradingAdminConfig",  # django.contrib.admin, with the site's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # Before staticfiles: its runserver (which refuses an unready database) must win.
    "tradingsite",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "django_celery_beat",
    "marketdata",
    "strategies",
    "orders",
    "workflows",
    "performance",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "tradingsite.urls"
WSGI_APPLICATION = "tradingsite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tradingsite.context_processors.trading_mode",
                "orders.context_processors.trading_halt_banner",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# The embedded default is an SQLite file; PostgreSQL whenever DATABASE_URL names one.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The web process, the worker and beat share the file: wait for locks, write-ahead log.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
# Web and worker processes keep their PostgreSQL connection (a new one per request or task
# cost a session each), checked before each request or task: one that died is replaced.
_SQLITE = DATABASES["default"]["ENGINE"].endswith("sqlite3")
CONN_MAX_AGE = env.int("CONN_MAX_AGE", default=0 if _SQLITE else 600)
DATABASES["default"].setdefault("CONN_MAX_AGE", CONN_MAX_AGE)
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Time, language, static -----------------------------------------------------------------
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
USE_I18N = False
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
# In production (DEBUG off) static files are served by WhiteNoise from STATIC_ROOT under
# hashed names, so collectstatic must have run; DEBUG (make run) and the tests serve them from
# the apps' folders as they are.
if not (DEBUG or TESTING):
    # Static files from STATIC_ROOT (`manage.py collectstatic` at deploy), compressed and
    # cached for ever under their hashed names, by every web process (gunicorn).
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG or TESTING
        else "tradingsite.storage.StaticFilesStorage"
    },
}
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=str(VAR_DIR / "media"))

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Security (secure unless DEBUG) ---------------------------------------------------------
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
# Only behind a proxy that sets X-Forwarded-Proto itself (and drops a client's): otherwise any
# client could send "https" and skip the HTTPS redirect.
if env.bool("TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- Trading --------------------------------------------------------------------------------
# Paper trading unless TRADING_MODE=live is set explicitly.
TRADING_MODE = env.str("TRADING_MODE", default="paper").strip().lower()
if TRADING_MODE not in ("paper", "live"):
    raise ImproperlyConfigured(f"TRADING_MODE must be 'paper' or 'live', not {TRADING_MODE!r}.")

# The site-wide daily loss limit (percent of ACCOUNT_SIZE; unset: none): once today's net
# realized plus unrealized loss passes it, new entries are refused until the next day (UTC).
# A strategy's own max_daily_loss_pct (of its account_size) applies to its runs instead.
MAX_DAILY_LOSS_PCT = env.str("MAX_DAILY_LOSS_PCT", default="").strip() or None
if MAX_DAILY_LOSS_PCT is not None:
    try:
        MAX_DAILY_LOSS_PCT = Decimal(MAX_DAILY_LOSS_PCT)
    except ArithmeticError:
        raise ImproperlyConfigured(
            f"MAX_DAILY_LOSS_PCT must be a percent such as 3, not {MAX_DAILY_LOSS_PCT!r}."
        ) from None
    if not 0 < MAX_DAILY_LOSS_PCT <= 100:
        raise ImproperlyConfigured("MAX_DAILY_LOSS_PCT must be above 0 and at most 100.")
ACCOUNT_SIZE = Decimal(env.str("ACCOUNT_SIZE", default="100000"))

IBKR_HOST = env.str("IBKR_HOST", default="")  # empty: the loopback gateway
IBKR_PORT = env.int("IBKR_PORT", default=4002)
IBKR_CLIENT_ID = env.int("IBKR_CLIENT_ID", default=1)
# Every process that talks to IB leases a client id of its own from this range, through Redis
# when REDIS_URL is set (a lease expires IBKR_CLIENT_ID_LEASE_SECONDS after its process stopped
# renewing it), else through lock files on this machine (tradingsite/broker/leases.py).
IBKR_CLIENT_ID_RANGE = env.str("IBKR_CLIENT_ID_RANGE", default="1-99")
IBKR_CLIENT_ID_LEASE_SECONDS = env.float("IBKR_CLIENT_ID_LEASE_SECONDS", default=60.0)
if IBKR_CLIENT_ID_LEASE_SECONDS <= 0:
    raise ImproperlyConfigured(
        f"IBKR_CLIENT_ID_LEASE_SECONDS must be more than 0, not {IBKR_CLIENT_ID_LEASE_SECONDS:g}."
    )
# ib_listen connects with this id; set IB Gateway/TWS's "Master API client ID" to it, so that
# it hears the orders, fills and commissions of every client (the web, workers, commands).
IBKR_MASTER_CLIENT_ID = env.int("IBKR_MASTER_CLIENT_ID", default=IBKR_CLIENT_ID + 3)
from tradingsite.broker.leases import client_id_range  # noqa: E402 - refuses a malformed range

client_id_range(IBKR_CLIENT_ID_RANGE)
IBKR_REQUEST_TIMEOUT = env.float("IBKR_REQUEST_TIMEOUT", default=15.0)
IBKR_CONNECT_ATTEMPTS = env.int("IBKR_CONNECT_ATTEMPTS", default=3)
IBKR_RECONNECT_BACKOFF = env.float("IBKR_RECONNECT_BACKOFF", default=0.5)
# A connection idle longer than IBKR_HEARTBEAT_SECONDS is asked IB's time (answered within
# IBKR_HEARTBEAT_TIMEOUT) before its next request: a gateway that went away is found before an
# order is sent into a dead socket. An order counts as sent once IB acknowledged it, within
# IBKR_ORDER_ACK_TIMEOUT; else it is rejected here, with that reason.
IBKR_HEARTBEAT_SECONDS = env.float("IBKR_HEARTBEAT_SECONDS", default=5.0)
IBKR_HEARTBEAT_TIMEOUT = env.float("IBKR_HEARTBEAT_TIMEOUT", default=2.0)
IBKR_ORDER_ACK_TIMEOUT = env.float("IBKR_ORDER_ACK_TIMEOUT", default=5.0)
# IB's market data type for prices: 1 live, 3 delayed (a paper account without market data
# subscriptions; IB sends live data anyway where the account has it). Paper: delayed allowed.
IBKR_MARKET_DATA_TYPE = env.int(
    "IBKR_MARKET_DATA_TYPE", default=3 if TRADING_MODE == "paper" else 1
)
if IBKR_MARKET_DATA_TYPE not in (1, 2, 3, 4):
    raise ImproperlyConfigured(
        f"IBKR_MARKET_DATA_TYPE must be 1, 2, 3 or 4 (IB's market data types), not "
        f"{IBKR_MARKET_DATA_TYPE}."
    )
# IB's historical-data pacing rules wait on the real clock; the test suite keeps them on a
# simulated one (tradingsite/broker/pacing.py), since the loopback gateway enforces none.
IBKR_PACING_CLOCK = env.str("IBKR_PACING_CLOCK", default="real").strip().lower()
if IBKR_PACING_CLOCK not in ("real", "simulated"):
    raise ImproperlyConfigured(
        f"IBKR_PACING_CLOCK must be 'real' or 'simulated', not {IBKR_PACING_CLOCK!r}."
    )
# Django's cache holds the API's throttle counters. In-process by default; a site running
# several web processes sets CACHE_URL (e.g. redis://host:6379/1, a Redis database of its own:
# clearing the cache empties it) so that they count together.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}
MARKET_DATA_CACHE_SECONDS = env.int("MARKET_DATA_CACHE_SECONDS", default=3600)
# The bar store's beat job syncs these timeframes (seed 004's names) of every active code.
BAR_STORE_TIMEFRAMES = env.list("BAR_STORE_TIMEFRAMES", default=["1Day"])

WORKFLOW_MAX_RUNTIME_SECONDS = env.int("WORKFLOW_MAX_RUNTIME_SECONDS", default=3600)

# Retention (seed 002), each applied by a daily beat job: decisions that led to no order,
# performance snapshots (older ones thinned to one a day), the runs' logs. Trades, orders and
# their executions are never deleted.
DECISION_RETENTION_DAYS = env.int("DECISION_RETENTION_DAYS", default=90)
PERFORMANCE_RETENTION_DAYS = env.int("PERFORMANCE_RETENTION_DAYS", default=180)
EXECUTION_LOG_RETENTION_DAYS = env.int("EXECUTION_LOG_RETENTION_DAYS", default=30)

LLM_BASE_URL = env.str("LLM_BASE_URL", default="")  # empty: the deterministic offline model
LLM_MODEL = env.str("LLM_MODEL", default="")
LLM_API_KEY = env.str("LLM_API_KEY", default="")

# --- Celery ---------------------------------------------------------------------------------
# REDIS_URL serves as broker and result backend; without it, SQLite files need no server.
REDIS_URL = env.str("REDIS_URL", default="")
CELERY_BROKER_URL = env.str(
    "CELERY_BROKER_URL", default=REDIS_URL or f"sqla+sqlite:///{VAR_DIR / 'celery-broker.sqlite3'}"
)
CELERY_RESULT_BACKEND = env.str(
    "CELERY_RESULT_BACKEND",
    default=REDIS_URL or f"db+sqlite:///{VAR_DIR / 'celery-results.sqlite3'}",
)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TRACK_STARTED = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "tradingsite.beat:DatabaseScheduler"  # django-celery-beat's, faster
# Three queues, so that a flood of runs never delays the broker's housekeeping: `runs` (the
# workflow runs), `broker` (reconcile with IB, the sweep of orphaned runs) and `maintenance`
# (metrics, snapshots, purges, and any task not routed). A worker started without -Q
# consumes all three (make run's); production gives each its workers (the Procfile).
CELERY_TASK_QUEUES = {name: {"exchange": name, "routing_key": name}
                      for name in ("runs", "broker", "maintenance")}  # fmt: skip
CELERY_TASK_DEFAULT_QUEUE = "maintenance"
CELERY_TASK_ROUTES = {
    "workflows.tasks.run_workflow": {"queue": "runs"},
    "orders.tasks.*": {"queue": "broker"},
    "workflows.tasks.executions_sweep_task": {"queue": "broker"},
}
# A workflow run is stopped (it fails, saying why) once it has lasted the longest a run may, and
# its worker killed a minute later if it is still at it. Redis hands an unacknowledged message
# (late acks) to another worker after its visibility timeout: that must come after the kill, or
# a long run would be delivered again while it is alive.
WORKFLOW_TIME_LIMIT_SECONDS = WORKFLOW_MAX_RUNTIME_SECONDS + 60
# Redis may go away and come back (a restart, a failover) at any moment: the worker keeps
# retrying its connection, at start and at run time, for as long as it takes, and consumes
# again once Redis answers. A run in progress does not wait for it: the run's lock lives in
# Redis, so the run stops at its next step and fails, saying why (workflows/engine/locks.py).
# On connection loss the worker also cancels its running late-ack tasks (their message could
# not be acknowledged any more); a cancelled run ends failed with that reason
# (tradingsite/celery.py), and a redelivered one is never run twice (runner.execution_run).
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BROKER_CHANNEL_ERROR_RETRY = True
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# The result backend (progress, results) retries a lost connection a few times, then gives up
# on that write: the database keeps a run's progress and its end.
CELERY_RESULT_BACKEND_ALWAYS_RETRY = True
CELERY_RESULT_BACKEND_MAX_RETRIES = 5
CELERY_RESULT_BACKEND_BASE_SLEEP_BETWEEN_RETRIES_MS = 200
CELERY_RESULT_BACKEND_MAX_SLEEP_BETWEEN_RETRIES_MS = 2000
if CELERY_BROKER_URL.startswith(("redis://", "rediss://", "redis+socket://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": WORKFLOW_TIME_LIMIT_SECONDS + 300,
        # A dead connection (Redis gone without closing it) is found within seconds.
        "health_check_interval": 10,
        "socket_keepalive": True,
        "socket_connect_timeout": 5,
        "retry_on_timeout": True,
    }
    CELERY_REDIS_BACKEND_HEALTH_CHECK_INTERVAL = 10
    CELERY_REDIS_SOCKET_KEEPALIVE = True
    CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = 5

# --- REST API -------------------------------------------------------------------------------
# Token (`manage.py drf_create_token USERNAME`) or session; staff write, other users read.
# The speed layer (tradingsite/fast.py): every override of a DRF, django-filter, Django or
# psycopg internal made for speed. Off (API_FAST=false), the frameworks' own code runs: the same
# bytes, slower (README, "Performance").
API_FAST = env.bool("API_FAST", default=True)
# Single overrides turned off by name (tradingsite.fast.OVERRIDES), comma-separated: for
# bench/api.py to weigh each one.
API_FAST_OFF = env.list("API_FAST_OFF", default=[])

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tradingsite.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tradingsite.api.permissions.StaffWritesOthersRead"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PARSER_CLASSES": [
        "tradingsite.api.parsers.JSONParser",  # DRF's, refusing JSON nested too deep
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": [
        "tradingsite.api.renderers.JSONRenderer",  # DRF's output, written by orjson
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PAGINATION_CLASS": "tradingsite.api.pagination.StandardPagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "tradingsite.api.exceptions.api_exception_handler",
    # Date-times leave the serializers as they are (UTC, as the database and TIME_ZONE give
    # them) and the JSON encoder writes ISO 8601 with "Z": the same text, without converting
    # each one to the current time zone first (a tenth of a big list's time).
    "DATETIME_FORMAT": None,
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("API_THROTTLE_ANON", default="60/min"),
        "user": env.str("API_THROTTLE_USER", default="1000/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Trading site API",
    "DESCRIPTION": (
        "Strategies, workflows, decisions, orders, trades and positions. Authenticate with "
        "`Authorization: Token <key>` or a session; staff users write, other users read. "
        "A refused request is a 400 whose body is `{detail, errors: {field: [reason]}}`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "StrategyTypeEnum": "strategies.models.StrategyType",
        "WorkflowTypeEnum": "workflows.models.WorkflowType",
        "DecisionTypeEnum": "strategies.models.DecisionType",
        "OrderStatusEnum": "orders.models.OrderStatus",
        "ExecutionStatusEnum": "workflows.models.ExecutionStatus",
        "TradingModeEnum": "orders.models.TradingMode",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "tradingsite.api.schema.document_error_responses",
    ],
    # Swagger UI from the drf-spectacular-sidecar package, served by tradingsite.api.urls.
    "SWAGGER_UI_DIST": "/api/docs/assets/swagger-ui-dist",
    "SWAGGER_UI_FAVICON_HREF": "/api/docs/assets/swagger-ui-dist/favicon-32x32.png",
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True},
}

LOG_LEVEL = env.str("LOG_LEVEL", default="").upper() or None
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL or "INFO"},
    # Libraries say too much at INFO: AutoGen logs every message event (the conversation is
    # stored anyway), ib_insync every order event and request, celery beat every due task.
    # They log at WARNING and up unless LOG_LEVEL is set, which then applies to them too.
    "loggers": {
        name: {"level": LOG_LEVEL or "WARNING"}
        for name in (
            "autogen_core",
            "autogen_core.events",
            "autogen_agentchat",
            "httpx",
            "ib_insync",
            "celery.beat",
            "django_celery_beat",
        )
    },  # fmt: skip
}
