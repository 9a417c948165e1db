"""One settings module, read from the environment through tiny typed helpers.

Nothing needs to be set: SQLite and media under var/, a secret key generated once into var/.
"""

import ipaddress
import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from upscale_worker.engine import limits
from upscale_worker.engine.config import DEFAULT_TILES, PRECISIONS, WINDOW_AREA
from webapp import logs

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name, default=""):
    return os.environ.get(name, default)


def env_bool(name, default=False):
    """1/true/yes/on or 0/false/no/off (any case); empty or unset: ``default``. Anything else raises
    ImproperlyConfigured: ``HTTPS=enable`` must not quietly turn HTTPS off."""
    value = env(name).strip().lower()
    if not value:
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(
        f"{name}={value!r} is not a yes or no; use 1 or 0 (true/false, yes/no, on/off)."
    )


def env_int(name, default):
    """A whole number; empty or unset: ``default``. Raises ImproperlyConfigured on anything else."""
    return _number(name, default, int, "a whole number")


def env_float(name, default):
    """A number; empty or unset: ``default``. Raises ImproperlyConfigured on anything else."""
    return _number(name, default, float, "a number")


def env_int_list(name, default):
    """Comma-separated whole numbers as a tuple; empty or unset: ``default``. Raises ImproperlyConfigured."""
    items = env_list(name)
    return tuple(_number(name, default, int, "a list of whole numbers", item) for item in items) or default


def _number(name, default, kind, what, value=None):
    value = (env(name) if value is None else value).strip()
    try:
        return kind(value or default)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={env(name)!r} is not {what}.") from None


def env_list(name, default=""):
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


VAR_DIR = Path(env("VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key():
    path = VAR_DIR / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = env("SECRET_KEY") or _secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
SITE_NAME = env("SITE_NAME", "Upscaler")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our own static files: works offline
    "csp",
    "webapp.accounts",
    "webapp.jobs",
    "webapp.integrations",
]

MIDDLEWARE = [
    "webapp.middleware.ProxyHeadersMiddleware",
    "webapp.middleware.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "webapp.middleware.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "webapp.urls"
WSGI_APPLICATION = "webapp.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "webapp" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "webapp.jobs.views.site_context",
            ]
        },
    }
]

# Database: DATABASE_URL, default SQLite in WAL mode with immediate transactions, so the web
# process and the workers can write at once without "database is locked".
DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,  # a connection kept between requests (or tasks) is checked before reuse
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Connections that notice a cut (a pulled cable, a host gone, a partition): without these, a query or a
# command on a dead link waits for the kernel's retransmissions, about 15 minutes (tcp_retries2 = 15).
# NET_DEAD_AFTER: data unacknowledged this long ends the connection (TCP_USER_TIMEOUT, RFC 5482); an idle
# connection is probed after NET_KEEPALIVE_IDLE seconds, every NET_KEEPALIVE_INTERVAL, NET_KEEPALIVE_COUNT times.
NET_CONNECT_TIMEOUT = env_float("NET_CONNECT_TIMEOUT", 5)
NET_DEAD_AFTER = env_float("NET_DEAD_AFTER", 10)
NET_KEEPALIVE_IDLE = env_int("NET_KEEPALIVE_IDLE", 5)
NET_KEEPALIVE_INTERVAL = env_int("NET_KEEPALIVE_INTERVAL", 2)
NET_KEEPALIVE_COUNT = env_int("NET_KEEPALIVE_COUNT", 3)


def tcp_keepalive_options() -> dict[int, int]:
    """Socket options (level IPPROTO_TCP) for redis-py's ``socket_keepalive_options``: keepalive probing and
    TCP_USER_TIMEOUT in milliseconds. Options this platform lacks (TCP_USER_TIMEOUT is Linux's) are left out."""
    import socket

    wanted = {
        "TCP_KEEPIDLE": NET_KEEPALIVE_IDLE,
        "TCP_KEEPINTVL": NET_KEEPALIVE_INTERVAL,
        "TCP_KEEPCNT": NET_KEEPALIVE_COUNT,
        "TCP_USER_TIMEOUT": int(NET_DEAD_AFTER * 1000),
    }
    return {getattr(socket, name): value for name, value in wanted.items() if hasattr(socket, name)}


if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # libpq's own names (https://www.postgresql.org/docs/current/libpq-connect.html); connect_timeout is whole
    # seconds, at least 2.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "connect_timeout": max(2, round(NET_CONNECT_TIMEOUT)),
            "keepalives": 1,
            "keepalives_idle": NET_KEEPALIVE_IDLE,
            "keepalives_interval": NET_KEEPALIVE_INTERVAL,
            "keepalives_count": NET_KEEPALIVE_COUNT,
            "tcp_user_timeout": int(NET_DEAD_AFTER * 1000),
        }
    )

# Redis: the Celery broker and the cache (rate limits shared by every web process). Every client has the
# socket options (the site's own clients come from webapp/redis_clients.py).
REDIS_URL = env("REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_SOCKET_OPTIONS = {"socket_keepalive": True, "socket_keepalive_options": tcp_keepalive_options()}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "upscale",
        "OPTIONS": {
            "socket_connect_timeout": 0.5,
            "socket_timeout": 0.5,
            **REDIS_SOCKET_OPTIONS,
        },
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.db"

# Storage: local disk by default (a shared volume for several machines), or S3-compatible.
MEDIA_ROOT = Path(env("MEDIA_ROOT", VAR_DIR / "media"))
STATIC_ROOT = Path(env("STATIC_ROOT", VAR_DIR / "static"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "webapp" / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}


def s3_storage(bucket: str, endpoint_url: str | None, access_key: str | None, secret_key: str | None) -> dict:
    """django-storages' backend for any S3-compatible store: private objects, signed URLs, no overwriting, and
    requests that give up on a dead link within seconds (botocore would wait 60 s a read, five times)."""
    from botocore.config import Config

    config = Config(
        connect_timeout=NET_CONNECT_TIMEOUT,
        read_timeout=env_float("S3_READ_TIMEOUT", 30),
        tcp_keepalive=True,
        retries={"mode": "standard", "total_max_attempts": 3},
    )
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint_url,
            "access_key": access_key,
            "secret_key": secret_key,
            "default_acl": "private",
            "querystring_auth": True,
            "file_overwrite": False,
            "client_config": config,
        },
    }


if env("S3_BUCKET"):
    STORAGES["default"] = s3_storage(
        env("S3_BUCKET"),
        env("S3_ENDPOINT_URL") or None,
        env("S3_ACCESS_KEY") or None,
        env("S3_SECRET_KEY") or None,
    )
if DEBUG:
    STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"
FILE_UPLOAD_PERMISSIONS = 0o640
FILE_UPLOAD_TEMP_DIR = env("FILE_UPLOAD_TEMP_DIR") or None

# Accounts and mail.
SIGNUP_OPEN = env_bool("SIGNUP_OPEN", True)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"
EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "upscaler@localhost")
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# Limits and quotas.
MAX_UPLOAD_MB = env_float("MAX_UPLOAD_MB", 50)
MAX_UPLOAD_BYTES = int(MAX_UPLOAD_MB * 1024 * 1024)
MAX_REQUEST_BYTES = MAX_UPLOAD_BYTES + 1024 * 1024
MAX_INPUT_MEGAPIXELS = env_float(
    "MAX_INPUT_MEGAPIXELS", limits.DEFAULT_INPUT_MEGAPIXELS
)  # the CLI reads them too
MAX_OUTPUT_MEGAPIXELS = env_float("MAX_OUTPUT_MEGAPIXELS", limits.DEFAULT_OUTPUT_MEGAPIXELS)
MAX_QUEUED_JOBS_PER_USER = env_int("MAX_QUEUED_JOBS_PER_USER", 50)
MEGAPIXELS_PER_DAY = env_float("MEGAPIXELS_PER_DAY", 2000)
USER_STORAGE_MB = env_float("USER_STORAGE_MB", 5000)
UPLOADS_PER_MINUTE = env_int("UPLOADS_PER_MINUTE", 60)
LOGINS_PER_MINUTE = env_int("LOGINS_PER_MINUTE", 10)  # failed logins per client and username (and sign-ups)
LOGIN_FAILURES_PER_CLIENT = env_int("LOGIN_FAILURES_PER_CLIENT", 30)  # a minute
LOGIN_LOCK_MAX_SECONDS = env_int("LOGIN_LOCK_MAX_SECONDS", 900)  # a lock doubles from 60 s up to this
RETENTION_DAYS = env_float("RETENTION_DAYS", 7)

# The engine's configuration in the workers (webapp/jobs/services/worker.py builds it from these).
UPSCALE_MODELS_DIR = Path(env("UPSCALE_MODELS_DIR") or BASE_DIR / "models")
MODEL_MANIFEST = UPSCALE_MODELS_DIR / "manifest.json"
UPSCALE_CACHE_DIR = Path(env("UPSCALE_CACHE_DIR") or BASE_DIR / "var" / "ov-cache")
UPSCALE_PRECISION = env("UPSCALE_PRECISION") or None  # None: per scale, the fastest faithful precision
if UPSCALE_PRECISION not in (None, *PRECISIONS):
    raise ImproperlyConfigured(
        f"UPSCALE_PRECISION={UPSCALE_PRECISION!r} is not one of {', '.join(PRECISIONS)}."
    )
UPSCALE_THREADS = env_int(
    "UPSCALE_THREADS", 0
)  # 0: the worker process' share of the cores (webapp/celery.py)
UPSCALE_TILE = env_int_list("UPSCALE_TILE", DEFAULT_TILES)
UPSCALE_WINDOW_AREA = env_int("UPSCALE_WINDOW_AREA", WINDOW_AREA)  # largest fitted window; 0: tiles only
UPSCALE_WINDOW_COSTS = Path(env("UPSCALE_WINDOW_COSTS") or BASE_DIR / "var" / "window-costs.json")
UPSCALE_MODELS = tuple(env_list("UPSCALE_MODELS"))  # the networks offered (edsr, rlfn); empty: every one
UPSCALE_DEFAULT_NETWORK = env("UPSCALE_DEFAULT_NETWORK") or "edsr"  # what a request without a choice gets

# Jobs and workers.
JOB_MAX_ATTEMPTS = env_int("JOB_MAX_ATTEMPTS", 3)
JOB_MAX_HANDBACKS = env_int("JOB_MAX_HANDBACKS", 10)  # hand-backs by workers shutting down, not attempts
JOB_LEASE_SECONDS = env_float("JOB_LEASE_SECONDS", 120)
JOB_PROGRESS_INTERVAL = env_float("JOB_PROGRESS_INTERVAL", 1.0)
JOB_SOFT_TIME_LIMIT = env_int("JOB_SOFT_TIME_LIMIT", 1800)
JOB_TIME_LIMIT = JOB_SOFT_TIME_LIMIT + 60
SWEEP_INTERVAL = env_float("SWEEP_INTERVAL", 30)
REPUBLISH_AFTER = env_float("REPUBLISH_AFTER", 30)  # a fresh row is left to its own publish this long
WORKER_HEARTBEAT = env_float("WORKER_HEARTBEAT", 10)  # seconds between a worker's liveness writes (TTL 3x)
STORAGE_SWEEP_INTERVAL = env_float("STORAGE_SWEEP_INTERVAL", 900)
WORKER_TMP_DIR = Path(env("WORKER_TMP_DIR", VAR_DIR / "tmp"))
PREVIEW_SIZE = env_int("PREVIEW_SIZE", 1024)
# Seconds between writes of a running job's partial preview (services/partial.py); 0 turns them off. One write
# of a 1920x1080 x2 job's costs a few milliseconds (docs/site.md), so this bounds the page's refresh, not cost.
PARTIAL_PREVIEW_INTERVAL = env_float("PARTIAL_PREVIEW_INTERVAL", 2.0)
# One job, many workers (webapp/jobs/services/fanout.py, docs/fanout.md): a job computing at least this many
# input megapixels (its windows, overlaps included) is split into at most FANOUT_MAX_PARTS parts that idle
# workers help with; FANOUT_HELPERS messages wake them (extra ones are skipped at once).
FANOUT_MIN_MEGAPIXELS = env_float("FANOUT_MIN_MEGAPIXELS", 0.4)
FANOUT_MAX_PARTS = env_int("FANOUT_MAX_PARTS", 64)
FANOUT_HELPERS = env_int("FANOUT_HELPERS", 8)
FANOUT_POLL = env_float("FANOUT_POLL", 0.1)  # seconds between the coordinator's looks at its parts
# Test-only: seconds a worker sleeps after each tile, so a job lasts long enough to be cut mid-way on any CPU.
TEST_TILE_DELAY = env_float("TEST_TILE_DELAY", 0)
THUMBNAIL_SIZE = 256

# Integrations: webhooks, batches, idempotent retries, waiting.
SITE_URL = env("SITE_URL", "http://127.0.0.1:8000").rstrip("/")  # absolute URLs in webhook bodies
WEBHOOK_RETRY_DELAYS = [float(d) for d in env_list("WEBHOOK_RETRY_DELAYS", "5,300,1800,7200,18000,36000")]
WEBHOOK_TIMEOUT = env_float("WEBHOOK_TIMEOUT", 10)
WEBHOOKS_ALLOWED_CIDRS = env_list("WEBHOOKS_ALLOWED_CIDRS")
MAX_WEBHOOK_ENDPOINTS = env_int("MAX_WEBHOOK_ENDPOINTS", 10)
MAX_BATCH_FILES = env_int("MAX_BATCH_FILES", 50)
MAX_BATCH_MB = env_float("MAX_BATCH_MB", 200)
MAX_BATCH_REQUEST_BYTES = (
    int(MAX_BATCH_MB * 1024 * 1024) + 1024 * 1024
)  # the body-size guard's limit for batches
IDEMPOTENCY_HOURS = 24
PREFER_WAIT_MAX = env_float("PREFER_WAIT_MAX", 20)
# The web server's threads per process (webapp/gunicorn_conf.py reads it): every cap on requests that hold a
# thread derives from it, so a different thread count never lets waiting requests take every thread.
WEB_THREADS = env_int("WEB_THREADS", 4)
# `Prefer: wait` holds a thread: per process two threads always stay free for everyone else, and one user holds
# at most half a process' threads across all processes (a Redis count); the rest are answered at once.
PREFER_WAIT_SLOTS = max(0, WEB_THREADS - 2)
PREFER_WAIT_PER_USER = max(1, WEB_THREADS // 2)
S3_PUBLIC_ENDPOINT_URL = env("S3_PUBLIC_ENDPOINT_URL")
PRESIGNED_SECONDS = 300

# Celery: every option here, read by webapp/celery.py (namespace CELERY_).
CELERY_BROKER_URL = REDIS_URL
# kombu's Redis transport; a worker retries a command over a new connection when a cut broke the old one.
CELERY_BROKER_TRANSPORT = "webapp.broker:Transport"
CELERY_BROKER_CONNECTION_TIMEOUT = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # A message not acknowledged in this time is redelivered: keep it above the hard time limit.
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", JOB_TIME_LIMIT + 300),
    "socket_connect_timeout": 1,
    "socket_timeout": 10,
    **REDIS_SOCKET_OPTIONS,
    # kombu drops a BRPOP connection whose reply is this overdue (a half-open link) and reconnects.
    "health_check_interval": 10,
    # A publish fails fast when Redis is down (the sweeper publishes again later).
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
}
# The same for a Redis result backend, should CELERY_RESULT_BACKEND ever be set (results are ignored today).
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = 1
CELERY_REDIS_SOCKET_TIMEOUT = 10
CELERY_REDIS_SOCKET_KEEPALIVE = True
CELERY_REDIS_BACKEND_HEALTH_CHECK_INTERVAL = 10
CELERY_TASK_DEFAULT_QUEUE = "upscale"
# A retry waits by countdown only when it is well inside the visibility timeout; longer waits are the sweeper's.
WEBHOOK_COUNTDOWN_MAX = min(300, CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] // 2)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_SOFT_TIME_LIMIT = JOB_SOFT_TIME_LIMIT
CELERY_TASK_TIME_LIMIT = JOB_TIME_LIMIT
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_MAX_TASKS_PER_CHILD = env_int("CELERY_WORKER_MAX_TASKS_PER_CHILD", 200)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery's Django fixup would close the database connection around every task (a new PostgreSQL connection
# cost 7 ms of each job); webapp/celery.py applies Django's own per-request policy instead.
CELERY_DB_REUSE_MAX = 1000
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ROUTES = {"webapp.integrations.tasks.*": {"queue": "webhooks"}}
CELERY_BEAT_SCHEDULE = {
    "sweep": {"task": "webapp.jobs.tasks.sweep", "schedule": SWEEP_INTERVAL},
    "sweep-webhooks": {
        "task": "webapp.integrations.tasks.sweep_webhooks",
        "schedule": SWEEP_INTERVAL,
        "options": {"queue": "webhooks"},
    },
    "expire": {"task": "webapp.jobs.tasks.expire", "schedule": 3600.0},
    "sweep-storage": {"task": "webapp.jobs.tasks.sweep_storage", "schedule": STORAGE_SWEEP_INTERVAL},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# REST API.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "EXCEPTION_HANDLER": "webapp.errors.exception_handler",
    "DEFAULT_METADATA_CLASS": None,  # OPTIONS answers 405 like any method a path does not take
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Upscaler API",
    "DESCRIPTION": "Upscale images with EDSR: create jobs, poll them, download results.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "webapp.errors.document_errors",
    ],
    "COMPONENT_SPLIT_REQUEST": True,
    # Two models have a "status": each enum gets a stable name of its own (generated clients import them); a
    # job's source and network are one enum each wherever they appear (jobs, batches, the estimate).
    "ENUM_NAME_OVERRIDES": {
        "StatusEnum": "webapp.jobs.models.Status",
        "DeliveryStatusEnum": "webapp.integrations.models.Delivery.Status",
        "SourceEnum": "webapp.jobs.models.Source",
        "NetworkEnum": "webapp.jobs.models.Network",
    },  # request bodies as their own components: a generated client sends files
}

# Security.
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Content-Security-Policy (django-csp): scripts and styles only from our own files (no inline code: the pages
# load app.js, the API docs drf-spectacular's split Swagger view); Swagger UI's stylesheet draws with data: images,
# the upload cards show each chosen file from a blob: URL before it is sent.
# A file download keeps its own stricter policy (webapp/jobs/views.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        # and the one <style> OpenSeadragon (the job page's viewer) adds itself, allowed by its hash alone
        "style-src": ["'self'", "'sha256-9xTiqzfwFaL2SGb1rmr8gysEwVVjIvqWAgmZgqFqpEE='"],
        "img-src": ["'self'", "data:", "blob:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
SESSION_COOKIE_HTTPONLY = True
# Reverse proxies whose X-Forwarded-For, X-Forwarded-Proto and X-Request-ID are believed (addresses or CIDRs;
# webapp/proxy.py). BEHIND_HTTPS_PROXY alone trusts loopback and private networks.
PRIVATE_NETWORKS = "127.0.0.0/8,::1,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", PRIVATE_NETWORKS if env_bool("BEHIND_HTTPS_PROXY") else "")
# GET /metrics: a bearer token, or client addresses (behind TRUSTED_PROXIES); 404 when neither is set.
METRICS_TOKEN = env("METRICS_TOKEN")
METRICS_ALLOWED_CIDRS = env_list("METRICS_ALLOWED_CIDRS")
for _entry in TRUSTED_PROXIES + METRICS_ALLOWED_CIDRS:  # a typo stops the start, with the entry named
    ipaddress.ip_network(_entry, strict=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if TRUSTED_PROXIES else None
HTTPS = env_bool("HTTPS", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS and env_bool("SECURE_SSL_REDIRECT", True)
# Probes and the scraper reach a pod over plain HTTP from inside the cluster, not through the TLS proxy.
SECURE_REDIRECT_EXEMPT = [r"^livez$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = False
USE_TZ = True

# Logs to stdout: plain lines, or LOG_FORMAT=json for one JSON object per line with request and job ids.
LOG_FORMAT = env("LOG_FORMAT", "plain")
LOGGING = logs.config(LOG_FORMAT, env("LOG_LEVEL", "INFO"))
