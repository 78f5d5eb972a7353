"""Django settings for Collect.

Every setting comes from the environment (see ``.env.example``); the defaults
run the whole platform on a laptop with nothing but Python: SQLite in WAL
mode, kombu's ``filesystem://`` broker and e-mail written to files, all under
``COLLECT_DATA_DIR``.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from collect.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DATA_DIR = Path(env_str("COLLECT_DATA_DIR", "var")).expanduser().resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)
# Production mode: a real SECRET_KEY is required and cookies and HTTPS are
# locked down (``collect check --deploy`` is clean). The laptop default is off.
PRODUCTION = env_bool("COLLECT_PRODUCTION", False)


def _secret_key() -> str:
    """Use SECRET_KEY when given; otherwise make one once and keep it in the data dir.

    Keeping it means sessions and signed download links survive a restart.
    """
    key = env_str("SECRET_KEY")
    if key:
        return key
    if PRODUCTION:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when COLLECT_PRODUCTION=true "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))')."
        )
    key_file = DATA_DIR / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    key = secrets.token_urlsafe(50)
    key_file.touch(mode=0o600)
    key_file.write_text(key)
    return key


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "collect",
    "jobs",
    "teams",
    "responses",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "collect.middleware.TokenAuthMiddleware",
    "collect.middleware.JobLimitMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "collect.urls"
WSGI_APPLICATION = "collect.wsgi.application"

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
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'collect.sqlite3'}")


def _database(url: str) -> dict[str, Any]:
    try:
        db: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=0))
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL={url!r} is not understood: {exc}") from exc
    engine = db["ENGINE"]
    options: dict[str, Any] = dict(db.get("OPTIONS") or {})
    if engine == "django.db.backends.sqlite3":
        # WAL lets the web read while a worker writes; IMMEDIATE takes the
        # write lock at BEGIN so two writers queue instead of failing with
        # "database is locked" half-way through a transaction.
        options.setdefault("init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
        options.setdefault("transaction_mode", "IMMEDIATE")
        options.setdefault("timeout", 20)
        db["TEST"] = {"NAME": str(DATA_DIR / "test_collect.sqlite3")}
    elif engine in {"django.db.backends.mysql"}:
        options.setdefault("charset", "utf8mb4")
        options.setdefault("init_command", "SET sql_mode='STRICT_TRANS_TABLES'")
        db["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
    elif engine in {"django.db.backends.postgresql"}:
        pass
    else:
        raise ImproperlyConfigured(
            f"DATABASE_URL uses {engine}; Collect supports sqlite://, mysql:// and postgres://"
        )
    db["OPTIONS"] = options
    db["CONN_HEALTH_CHECKS"] = True
    return db


DATABASES = {"default": _database(DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/tasks/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Files ------------------------------------------------------------------

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(DATA_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(DATA_DIR / "files")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Uploads stream to a temporary file from the first byte (never whole in memory).
FILE_UPLOAD_MAX_MEMORY_SIZE = 0
FILE_UPLOAD_TEMP_DIR = str(DATA_DIR / "tmp")
Path(FILE_UPLOAD_TEMP_DIR).mkdir(parents=True, exist_ok=True)
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
COLLECT_UPLOAD_MAX_BYTES = env_int("COLLECT_UPLOAD_MAX_BYTES", 1024**3)

# --- E-mail -----------------------------------------------------------------

EMAIL_HOST = env_str("EMAIL_HOST")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = str(DATA_DIR / "mail")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Collect <collect@localhost>")

# --- Celery -----------------------------------------------------------------

BROKER_DIR = DATA_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://localhost//")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's filesystem transport, with atomic message writes (see collect/broker.py).
    CELERY_BROKER_TRANSPORT = "collect.broker:Transport"
    # kombu needs absolute folders that exist; in == out makes one shared queue.
    for sub in ("queue", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        "polling_interval": env_float("COLLECT_BROKER_POLL_SECONDS", 0.1),
    }
CELERY_TASK_DEFAULT_QUEUE = env_str("COLLECT_QUEUE", "collect")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_CONCURRENCY = env_int("COLLECT_WORKER_CONCURRENCY", 2)
# A job runs batch by batch and checks in after each one, so a single task
# may run for hours; the limit is a last resort against a hung batch.
CELERY_TASK_TIME_LIMIT = env_int("COLLECT_TASK_TIME_LIMIT", 24 * 3600)

# --- Job engine -------------------------------------------------------------

# A running job renews its lease after every batch; a job whose lease has
# expired belongs to a worker that died and is taken over.
COLLECT_JOB_LEASE_SECONDS = env_float("COLLECT_JOB_LEASE_SECONDS", 30.0)
# How many jobs one user may start per minute (0: no limit); more get HTTP 429.
COLLECT_JOBS_PER_MINUTE = env_int("COLLECT_JOBS_PER_MINUTE", 30)
# How often every worker looks for jobs whose lease expired.
COLLECT_SWEEP_SECONDS = env_float("COLLECT_SWEEP_SECONDS", 10.0)

# --- REST API ---------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an API client with a bad token gets 401 + WWW-Authenticate.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Collect API",
    "DESCRIPTION": "Start, watch, pause, resume and stop long-running jobs.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI served from our own static files: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The schema and its docs are for signed-in users and token clients, like the rest.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
}

# --- Logging ----------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
    },
}

SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if PRODUCTION:
    if DEBUG:
        raise ImproperlyConfigured("DEBUG must be off when COLLECT_PRODUCTION=true.")
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        # Preloading is a promise browsers keep for months that every subdomain is
        # HTTPS-only: the operator opts in (SECURE_HSTS_PRELOAD=true), so the check
        # that recommends it is noise until then.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
    # Behind a TLS-terminating proxy that sets X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# The job kinds this installation runs (adding a kind: one file and one line here).
COLLECT_JOB_KINDS = [
    "jobs.kinds.count.CountKind",
    "teams.importer.TeamImport",
    "responses.exporter.ResponseExport",
]
# A queued job whose message may have been lost (a worker died holding it) is
# sent again after this long; duplicates are harmless, claiming is a compare-and-set.
COLLECT_REQUEUE_QUEUED_SECONDS = env_float("COLLECT_REQUEUE_QUEUED_SECONDS", 300.0)
# Serve static files straight from the apps' folders: no collectstatic needed on a laptop.
WHITENOISE_USE_FINDERS = True

# --- Export form responses (responses/) -------------------------------------

# A finished export up to this size (gzipped when that makes it smaller) is
# attached to the e-mail; a bigger one is sent as a signed download link.
COLLECT_EXPORT_ATTACH_MAX_BYTES = env_int("COLLECT_EXPORT_ATTACH_MAX_BYTES", 5 * 1024**2)
# How long the download link in the e-mail works.
COLLECT_EXPORT_LINK_MAX_AGE_SECONDS = env_int("COLLECT_EXPORT_LINK_MAX_AGE_SECONDS", 7 * 24 * 3600)
# Rows read and appended per batch (one checkpoint each).
COLLECT_EXPORT_BATCH_ROWS = env_int("COLLECT_EXPORT_BATCH_ROWS", 5000)
# Seconds to rest after each batch, to leave a busy database room for other work.
COLLECT_EXPORT_THROTTLE_SECONDS = env_float("COLLECT_EXPORT_THROTTLE_SECONDS", 0.0)
# Sending the e-mail: attempts, and the first wait between them (doubled each time).
COLLECT_EXPORT_MAIL_ATTEMPTS = env_int("COLLECT_EXPORT_MAIL_ATTEMPTS", 4)
COLLECT_EXPORT_MAIL_BACKOFF_SECONDS = env_float("COLLECT_EXPORT_MAIL_BACKOFF_SECONDS", 5.0)
# Links in e-mails sent by the CLI (web requests use the address they came in on).
COLLECT_SITE_URL = env_str("COLLECT_SITE_URL", "http://localhost:8000")
# --- end of export settings -------------------------------------------------

# --- Team import (teams/) ---------------------------------------------------
# Rows per batch (one transaction each). Measured with bench/bench_import.py:
# throughput flattens out above a few thousand rows, while a pause or a stop
# waits for at most one batch.
COLLECT_IMPORT_BATCH_SIZE = env_int("COLLECT_IMPORT_BATCH_SIZE", 5000)
# Seconds to rest after each batch, to leave a busy database room for other work.
COLLECT_IMPORT_THROTTLE_SECONDS = env_float("COLLECT_IMPORT_THROTTLE_SECONDS", 0.0)
# The largest value one cell may hold, in bytes. A bigger one is a row problem
# (row and column named), and no line longer than a row of such cells is ever
# held in memory: this bounds the worker's memory whatever the file.
COLLECT_IMPORT_MAX_FIELD_BYTES = env_int("COLLECT_IMPORT_MAX_FIELD_BYTES", 1024**2)
# --- end of team import -----------------------------------------------------
