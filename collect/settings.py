"""Django settings for Collect.

Every setting comes from the environment (see ``.env.example``); the defaults
run the whole platform on a laptop with nothing but Python: SQLite in WAL
mode, kombu's ``filesystem://`` broker and e-mail written to files, all under
``COLLECT_DATA_DIR``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import secrets
import tempfile
import zoneinfo
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from collect.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

# The data folder holds personal data (the database, uploads, exports, mail,
# broker messages): only the account that runs Collect may read it. The umask
# is set here because every process (web, worker, CLI) loads the settings before
# it writes anything, so whatever SQLite, kombu or Django create is 0600 (0700
# for folders) without each of them being told.
os.umask(0o077)
# The default does not depend on the folder a command runs from: var/ in a
# source checkout (beside manage.py), the user's data folder (XDG base
# directory specification) when installed as a package.
_default_data_dir = (
    BASE_DIR / "var"
    if (BASE_DIR / "manage.py").is_file()
    else Path(os.environ.get("XDG_DATA_HOME") or "~/.local/share").expanduser() / "collect"
)
DATA_DIR = Path(env_str("COLLECT_DATA_DIR", str(_default_data_dir))).expanduser().resolve()
DATA_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
with contextlib.suppress(PermissionError):  # a folder someone else owns stays as it is
    DATA_DIR.chmod(0o700)

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


# Keys anyone can find: Django's placeholder prefix, the usual stand-ins, and
# the example files' values. Production refuses them, and anything short.
KNOWN_SECRET_KEYS = {"changeme", "change-me", "secret", "secret_key", "build-only-not-secret"}
# (the last one is the Dockerfile's, for collectstatic at build time)
SECRET_KEY_MIN_LENGTH = 50


def _check_production_secret_key(key: str) -> None:
    """Refuse a SECRET_KEY that can be guessed (Django's deploy checklist: 50+ characters)."""
    if key.startswith("django-insecure") or key.strip().lower() in KNOWN_SECRET_KEYS:
        raise ImproperlyConfigured(
            "SECRET_KEY is a well-known value: anyone could forge sessions and download links. "
            "Set a new random one (python -c 'import secrets; print(secrets.token_urlsafe(50))')."
        )
    if len(key) < SECRET_KEY_MIN_LENGTH:
        raise ImproperlyConfigured(
            f"SECRET_KEY is too short ({len(key)} characters): production needs at "
            f"least {SECRET_KEY_MIN_LENGTH} random characters "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))')."
        )


SECRET_KEY = _secret_key()
if PRODUCTION:
    _check_production_secret_key(SECRET_KEY)
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
    "knox",
    "axes",
    "csp",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "collect",
    "jobs",
    "teams",
    "responses",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "collect.middleware.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "collect.middleware.SessionRenewMiddleware",
    "collect.middleware.TokenAuthMiddleware",
    "collect.middleware.JobLimitMiddleware",
    "jobs.audit.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a lockout into its answer.
    "axes.middleware.AxesMiddleware",
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


# Seconds a database session may sit idle inside a transaction before the server
# ends it (and so releases its locks); 0 turns it off. PostgreSQL and MariaDB.
IDLE_IN_TRANSACTION_SECONDS = int(env_float("COLLECT_DB_IDLE_IN_TRANSACTION_SECONDS", 120.0))


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
        # A page cache of 16 MiB per connection (SQLite's default is 2 MiB, "PRAGMA
        # cache_size"): an import's undo of 1M teams touches the name and manager
        # indexes all over; measured 11.6 s → 7.1 s (32 MiB: 6.7 s, 128 MiB: 7.1 s,
        # but 32 MiB took a worker's peak RSS at 1M rows from ~102 to 141 MiB).
        options.setdefault(
            "init_command",
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-16384;",
        )
        options.setdefault("transaction_mode", "IMMEDIATE")
        options.setdefault("timeout", 20)
        db["TEST"] = {"NAME": str(DATA_DIR / "test_collect.sqlite3")}
    elif engine in {"django.db.backends.mysql"}:
        options.setdefault("charset", "utf8mb4")
        init = "SET sql_mode='STRICT_TRANS_TABLES'"
        if IDLE_IN_TRANSACTION_SECONDS > 0:
            # MariaDB 10.3+ ends a session idle in a transaction after this many
            # seconds ("idle_transaction_timeout"); ``/*M!100300 … */`` is run by
            # MariaDB from 10.3.0 on and skipped as a comment by MySQL, which has
            # no such setting and relies on innodb_lock_wait_timeout (MariaDB docs,
            # "Comment Syntax"). Why: see the PostgreSQL case below.
            init += f" /*M!100300 , idle_transaction_timeout={IDLE_IN_TRANSACTION_SECONDS} */"
        options.setdefault("init_command", init)
        # An import's batches go through LOAD DATA LOCAL INFILE (teams/loader.py); the
        # server must allow it too (local_infile=1), else they are written row by row.
        options.setdefault("local_infile", 1)
        db["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
    elif engine in {"django.db.backends.postgresql"}:
        # A worker frozen inside a batch's transaction (SIGSTOP, a paused VM, a
        # stalled network) would hold the job row's lock for ever, and the
        # worker taking the job over would wait on it for ever; the server ends
        # such a session, and so its locks, after this long (PostgreSQL docs,
        # "idle_in_transaction_session_timeout"). Our transactions never wait
        # on anything but the database, except an export's part upload to a bucket.
        if IDLE_IN_TRANSACTION_SECONDS > 0:
            idle_ms = IDLE_IN_TRANSACTION_SECONDS * 1000
            options.setdefault("options", f"-c idle_in_transaction_session_timeout={idle_ms}")
    else:
        raise ImproperlyConfigured(
            f"DATABASE_URL uses {engine}; Collect supports sqlite://, mysql:// and postgres://"
        )
    db["OPTIONS"] = options
    # Seconds a connection is kept between requests (0: closed after each). The web
    # processes' view threads live as long as the process (collect/asgi.py), and the
    # ASGI module sets 60 for them; other processes default to 0.
    db["CONN_MAX_AGE"] = env_int("COLLECT_DB_CONN_MAX_AGE", 0)
    db["CONN_HEALTH_CHECKS"] = True
    return db


DATABASES = {"default": _database(DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        # OWASP ASVS 5.0 V6.2.1 (and NIST SP 800-63B for single-factor logins).
        "OPTIONS": {"min_length": env_int("COLLECT_PASSWORD_MIN_LENGTH", 12)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    # Not a rule: a changed password revokes the user's API tokens.
    {"NAME": "collect.tokens.RevokeTokensOnPasswordChange"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/tasks/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
try:
    zoneinfo.ZoneInfo(TIME_ZONE)
except (ValueError, zoneinfo.ZoneInfoNotFoundError):
    raise ImproperlyConfigured(
        f"TIME_ZONE={TIME_ZONE!r} is not a time zone name of the tz database "
        "(e.g. UTC, Europe/Paris, Africa/Nairobi)."
    ) from None
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
# Job files (uploads, exports, error reports) in an S3-compatible bucket when one is
# named, so workers on many hosts share no disk; django-storages' own setting names.
# No check at start: a store that is down for a moment fails the jobs that need a
# file (with a message saying so), not the site, the API or jobs that need none.
AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")
if AWS_STORAGE_BUCKET_NAME:
    STORAGES["default"] = {"BACKEND": "storages.backends.s3.S3Storage"}
    # Unset: AWS itself; else MinIO, Ceph, R2, ... (https://minio.example.com:9000).
    AWS_S3_ENDPOINT_URL = env_str("AWS_S3_ENDPOINT_URL") or None
    AWS_S3_REGION_NAME = env_str("AWS_S3_REGION_NAME") or None
    # Unset: boto3's own chain (instance or pod role, ~/.aws, AWS_* variables).
    AWS_ACCESS_KEY_ID = env_str("AWS_ACCESS_KEY_ID") or None
    AWS_SECRET_ACCESS_KEY = env_str("AWS_SECRET_ACCESS_KEY") or None
    # Key prefix inside the bucket ("" = the bucket's root).
    AWS_LOCATION = env_str("AWS_LOCATION")
    # "path" for stores without per-bucket host names (MinIO without DNS set up).
    AWS_S3_ADDRESSING_STYLE = env_str("AWS_S3_ADDRESSING_STYLE") or None
    # Downloads are a redirect to a presigned URL that works this many seconds.
    AWS_QUERYSTRING_EXPIRE = env_int("AWS_QUERYSTRING_EXPIRE", 300)
    AWS_S3_SIGNATURE_VERSION = env_str("AWS_S3_SIGNATURE_VERSION", "s3v4")
    # A worker reading an upload keeps this much in memory, the rest in a
    # temporary file under FILE_UPLOAD_TEMP_DIR that is removed when it is closed.
    AWS_S3_MAX_MEMORY_SIZE = env_int("AWS_S3_MAX_MEMORY_SIZE", 8 * 1024**2)
    AWS_S3_FILE_OVERWRITE = True  # every job file has a name of its own
# An export written to a bucket goes up in parts of this size (S3's least is 5 MiB);
# a worker holds at most one part (plus a batch) in memory.
COLLECT_EXPORT_PART_BYTES = max(5 * 1024**2, env_int("COLLECT_EXPORT_PART_BYTES", 8 * 1024**2))
# Django's defaults are 0644 and the umask's folders; personal data is the owner's only.
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700
# Uploads stream to a temporary file from the first byte (never whole in memory).
FILE_UPLOAD_MAX_MEMORY_SIZE = 0
FILE_UPLOAD_TEMP_DIR = str(DATA_DIR / "tmp")
Path(FILE_UPLOAD_TEMP_DIR).mkdir(parents=True, exist_ok=True)
COLLECT_UPLOAD_MAX_BYTES = env_int("COLLECT_UPLOAD_MAX_BYTES", 1024**3)
# Uploads of finished imports, export files and error reports are deleted this
# many days after their job ended (fractions allowed; 0: kept for ever).
COLLECT_RETENTION_DAYS = env_float("COLLECT_RETENTION_DAYS", 30.0)
# Most bytes of uploads and exports one user's jobs may keep at once (0: no
# quota); an upload that would pass it is refused with HTTP 413.
COLLECT_USER_QUOTA_BYTES = env_int("COLLECT_USER_QUOTA_BYTES", 5 * 1024**3)

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

BROKER_DIR = Path(env_str("COLLECT_BROKER_DIR", str(DATA_DIR / "broker")))
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
# A job whose worker was lost this many times (killed, out of memory) fails,
# undone, instead of being taken over for ever (0: no limit).
COLLECT_JOB_MAX_ATTEMPTS = env_int("COLLECT_JOB_MAX_ATTEMPTS", 5)

# --- REST API ---------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an API client with a bad token gets 401 + WWW-Authenticate.
        "collect.tokens.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # A JSON body that is not an object is a 400 that says so (not a 500).
    "DEFAULT_PARSER_CLASSES": [
        "collect.parsers.ObjectJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # A 404 without a sentence of ours gets one (collect/errors.py).
    "EXCEPTION_HANDLER": "collect.errors.api_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "collect.pagination.NumberedPages",
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
    "filters": {"refused_host": {"()": "collect.logs.RefusedHostLine"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # django-axes announces itself at every start of every command; its
        # warnings (lockouts) still show.
        "axes.apps": {"level": "WARNING"},
        # A Host header not in ALLOWED_HOSTS: one line, not a traceback (collect.logs).
        "django.security.DisallowedHost": {"filters": ["refused_host"]},
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
    # No SECURE_PROXY_SSL_HEADER: the web server itself believes X-Forwarded-Proto
    # (and -For) only from COLLECT_TRUSTED_PROXIES and hands Django the result as the
    # request's scheme and REMOTE_ADDR; Django believing the header too would let any
    # client claim HTTPS.
    # The container's health probe asks over plain HTTP from inside.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

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
# Rows read and appended per batch (one checkpoint each): the first batch's size and the
# least; later batches grow (or shrink) towards COLLECT_EXPORT_BATCH_SECONDS each, up to
# COLLECT_EXPORT_BATCH_MAX_ROWS. 0 seconds, or a throttle, keeps every batch at BATCH_ROWS.
COLLECT_EXPORT_BATCH_ROWS = env_int("COLLECT_EXPORT_BATCH_ROWS", 5000)
COLLECT_EXPORT_BATCH_SECONDS = env_float("COLLECT_EXPORT_BATCH_SECONDS", 0.2)
COLLECT_EXPORT_BATCH_MAX_ROWS = env_int("COLLECT_EXPORT_BATCH_MAX_ROWS", 50_000)
# Seconds to rest after each batch, to leave a busy database room for other work.
COLLECT_EXPORT_THROTTLE_SECONDS = env_float("COLLECT_EXPORT_THROTTLE_SECONDS", 0.0)
# CSV lines built by PostgreSQL/MariaDB (responses/sqllines.py, the same bytes, 2-3x faster);
# off: Python builds every line (e.g. if the database's time zone data is older than Python's).
COLLECT_EXPORT_SQL_LINES = env_bool("COLLECT_EXPORT_SQL_LINES", True)
# Sending the e-mail: attempts, and the first wait between them (doubled each time).
COLLECT_EXPORT_MAIL_ATTEMPTS = env_int("COLLECT_EXPORT_MAIL_ATTEMPTS", 4)
COLLECT_EXPORT_MAIL_BACKOFF_SECONDS = env_float("COLLECT_EXPORT_MAIL_BACKOFF_SECONDS", 5.0)
# Who may receive an export (personal data): the requester's own account address
# always; other addresses only in these domains (comma-separated, exact match,
# e.g. "example.org,field.example.org"). Empty: own address only. See responses/policy.py.
COLLECT_EXPORT_RECIPIENT_DOMAINS = [
    d.lower().rstrip(".") for d in env_list("COLLECT_EXPORT_RECIPIENT_DOMAINS", [])
]
# At most this many exports are mailed to one address in any 24 hours (0: no cap).
COLLECT_EXPORT_MAILS_PER_RECIPIENT_PER_DAY = env_int(
    "COLLECT_EXPORT_MAILS_PER_RECIPIENT_PER_DAY", 10
)
# Links printed by the CLI and in e-mails of jobs it started (web requests use the
# address they came in on). Unset: the address `collect serve` is running on with
# this data folder (it writes SITE_URL_FILE while it runs), else localhost:8000.
SITE_URL_FILE = DATA_DIR / "site-url"


def _site_url() -> str:
    try:
        return SITE_URL_FILE.read_text(encoding="utf-8").strip() or "http://localhost:8000"
    except OSError:
        return "http://localhost:8000"


COLLECT_SITE_URL = env_str("COLLECT_SITE_URL", "") or _site_url()
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
# How many parts a create import runs as when the request does not say
# (``parallelism``): parts run on different workers at once (jobs/parts.py).
COLLECT_IMPORT_PARALLELISM = env_int("COLLECT_IMPORT_PARALLELISM", 1)
if not 1 <= COLLECT_IMPORT_PARALLELISM <= 64:
    raise ImproperlyConfigured("COLLECT_IMPORT_PARALLELISM must be from 1 to 64.")
# --- end of team import -----------------------------------------------------

# --- Logins, sessions, headers, request limits (hardening) ---------------------

# Addresses or networks (CIDR) of the reverse proxies in front of `collect web`,
# comma-separated. Only a connection from one of them may set the client address
# and scheme through X-Forwarded-For / X-Forwarded-Proto; by default nobody can.
COLLECT_TRUSTED_PROXIES = env_list("COLLECT_TRUSTED_PROXIES", [])

# Logins: django-axes counts failures on every form that calls authenticate()
# (the login page, the admin's) and locks out a user name, and separately a
# client address, after this many failures in a row, for the cool-off time.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    # Django's ModelBackend, with one query per has_perm() (collect/permissions.py).
    "collect.permissions.OneQueryModelBackend",
]
AXES_FAILURE_LIMIT = env_int("COLLECT_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_float("COLLECT_LOGIN_LOCKOUT_MINUTES", 15.0) / 60  # hours
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "collect.logins.lockout_response"
# The client address is REMOTE_ADDR alone: the web server has already replaced it
# with X-Forwarded-For's when (and only when) the request came through a trusted
# proxy, so a client cannot dodge the lockout by inventing a header.
AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]
AXES_IPWARE_PROXY_COUNT = 0
# Each failure is logged (WARNING, logger axes) with the user name tried and the
# client address, unmasked: that is what an operator needs to see an attack. The
# password is never logged.
AXES_SENSITIVE_PARAMETERS: list[str] = []
# Password-reset mails per client address, and per e-mail address, per hour
# (counted with the API's rate limits: see COLLECT_CACHE_URL below).
COLLECT_PASSWORD_RESETS_PER_HOUR = env_int("COLLECT_PASSWORD_RESETS_PER_HOUR", 5)

# The cache holds counters only: the API's rate limits (collect/throttling.py) and the
# password-reset limits above, raised with add() + incr(), which must be atomic.
# COLLECT_CACHE_URL=redis://host:6379/0 counts across every web host (Redis's INCR);
# empty, diskcache counts in SQLite files in a folder of this host's temporary
# directory (one per data folder), shared by the web processes of this host: not in
# the data folder, which may be a network mount shared by hosts, where SQLite's
# locks do not hold. (Django's file cache is not atomic: concurrent requests were
# lost from the count, and it rewrote a file per request.)
COLLECT_CACHE_URL = env_str("COLLECT_CACHE_URL", "").strip()
CACHES: dict[str, dict[str, Any]]
if COLLECT_CACHE_URL:
    _cache_url = urlsplit(COLLECT_CACHE_URL)
    if _cache_url.scheme not in {"redis", "rediss", "unix"}:
        raise ImproperlyConfigured(
            f"COLLECT_CACHE_URL must be a Redis URL (redis://host:6379/0, rediss://… or "
            f"unix:///path/to/redis.sock), not {_cache_url.scheme or COLLECT_CACHE_URL!r}; "
            "leave it empty to count on this host."
        )
    _cache_db = _cache_url.path.strip("/")
    if _cache_url.scheme != "unix" and _cache_db and not _cache_db.isdigit():
        raise ImproperlyConfigured(
            "COLLECT_CACHE_URL: after the host comes the Redis database number "
            f"(redis://host:6379/0), not {_cache_db!r}."
        )
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": COLLECT_CACHE_URL,
            "KEY_PREFIX": "collect",
            # A Redis that does not answer costs a request 0.5 s, not a hang, and
            # then is not asked for 10 s (collect/throttling.py lets requests through).
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "diskcache.DjangoCache",
            "LOCATION": str(
                Path(tempfile.gettempdir())
                / f"collect-counters-{hashlib.sha256(str(DATA_DIR).encode()).hexdigest()[:12]}"
            ),
            # Wait up to 1 s for another process's write (its default, 10 ms, is
            # retried by each call anyway).
            "DATABASE_TIMEOUT": 1.0,
        }
    }

# API tokens (django-rest-knox): stored as a SHA-512 digest, and valid this many
# days after they are made (collect drf_create_token USER makes a new one).
REST_KNOX = {
    "TOKEN_TTL": dt.timedelta(days=env_float("COLLECT_API_TOKEN_DAYS", 30.0)),
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
}

# A session ends after this many seconds without a request (requests renew it,
# at most once a minute: collect.middleware.SessionRenewMiddleware).
SESSION_COOKIE_AGE = env_int("COLLECT_SESSION_IDLE_SECONDS", 12 * 3600)

# Content-Security-Policy: only our own files run or style the pages (htmx is
# vendored; nothing is inline). django-csp 4; see the MDN CSP reference.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
SECURE_REFERRER_POLICY = "same-origin"
# Permissions-Policy: the pages use none of these browser features.
COLLECT_PERMISSIONS_POLICY = (
    "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()"
)

# Bodies of requests other than the import upload are capped at this many bytes
# (Django's own limit, enforced by collect/asgi.py before anything is read).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("COLLECT_REQUEST_MAX_BYTES", 2_621_440)

# Threads per web process that run views (collect/asgi.py); each keeps a database
# connection, so a web host holds up to WEB_WORKERS x this many.
COLLECT_WEB_THREADS = env_int("COLLECT_WEB_THREADS", 16)
# Of those, at most this many run reads (GET, HEAD, OPTIONS) at once; the others are
# kept for requests that change something (pause, stop, an upload, the seed's token
# GETs of /stop_task/ and /export_data/), so these never queue behind polls. Reads
# beyond it wait on the event loop, holding no thread. Views are Python, so threads
# of one process mostly take turns: two reads at once use a core about as well as
# sixteen, with less time lost switching (docs/performance.md).
COLLECT_WEB_READ_THREADS = env_int("COLLECT_WEB_READ_THREADS", 2)

# API throttling (DRF): requests per user (or per address when anonymous).
REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = [
    "collect.throttling.AnonRateThrottle",
    "collect.throttling.UserRateThrottle",
]
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {
    "anon": env_str("COLLECT_API_ANON_RATE", "60/minute"),
    "user": env_str("COLLECT_API_USER_RATE", "600/minute"),
}
