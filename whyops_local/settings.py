"""Settings, every one read from the environment here and nowhere else (README "Configuration").

Importing them writes nothing: the data folder is prepared by the start-up (``datadir.prepare``)."""

import os
from pathlib import Path

import dj_database_url

from . import datadir

BASE_DIR = Path(__file__).resolve().parent.parent
# templates/ and static/: an installed wheel carries them in the package (setup.py); a checkout, editable
# install or not, has them at its top level.
_PACKAGE_DIR = Path(__file__).resolve().parent
RESOURCES_DIR = _PACKAGE_DIR if (_PACKAGE_DIR / "templates").is_dir() else BASE_DIR

DATA_DIR = datadir.path()
SECRET_KEY = datadir.secret_key(DATA_DIR)
DEBUG = os.environ.get("WHYOPS_DEBUG", "") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", *filter(None, os.environ.get("WHYOPS_ALLOWED_HOSTS", "").split(","))]

# Optional key every route then needs, pages and websockets too (docs/whyops-protocol.md §2, README "Security").
WHYOPS_API_KEY = os.environ.get("WHYOPS_API_KEY") or None
# "1": serve on an address other than loopback without WHYOPS_API_KEY (refused otherwise: anyone who can reach
# it could read every trace and spend the server's provider keys).
WHYOPS_ALLOW_REMOTE = os.environ.get("WHYOPS_ALLOW_REMOTE", "") == "1"
# Largest request body accepted by the ingest API; larger ones get 413.
WHYOPS_MAX_BODY_BYTES = int(os.environ.get("WHYOPS_MAX_BODY_BYTES", 32 * 1024 * 1024))
DATA_UPLOAD_MAX_MEMORY_SIZE = WHYOPS_MAX_BODY_BYTES
# Seconds a request's body may take to arrive after its headers; a slower one gets 408 (http/daphne_requests.py).
WHYOPS_BODY_TIMEOUT = float(os.environ.get("WHYOPS_BODY_TIMEOUT") or 30)
# Database writes go to one writer process (storage/writer.py); tests write on their own thread instead.
WHYOPS_DEDICATED_WRITER = True
# Megabytes of proxied calls' records, answered to their clients but refused by the database (disk full,
# read-only, its file gone), that the writer holds to store once it takes writes again; past it the oldest
# are dropped, counted in /api/health's unstoredDropped.
WHYOPS_UNSTORED_MAX_MB = float(os.environ.get("WHYOPS_UNSTORED_MAX_MB") or 256)
# Flags (domain/flags.py) found as events are stored; "0" turns them off (for measuring their cost).
WHYOPS_FLAGS = os.environ.get("WHYOPS_FLAGS", "1") != "0"
# A JSON file of per-million-token prices that win over the bundled ones (README "Prices").
WHYOPS_PRICES_FILE = os.environ.get("WHYOPS_PRICES_FILE") or None

# The proxy (README "the logging proxy"): upstreams, seconds to wait for them (a first byte, a stream's
# first chunk included, and a whole non-streamed body; each later read of a stream), the server's own
# provider keys (unset: the client's goes upstream; set: scrubbed from all that is relayed back or
# stored), and how many conversations are remembered to match header-less calls to their trace.
WHYOPS_OPENAI_BASE_URL = (os.environ.get("WHYOPS_OPENAI_BASE_URL") or "https://api.openai.com/v1").rstrip("/")
WHYOPS_ANTHROPIC_BASE_URL = (os.environ.get("WHYOPS_ANTHROPIC_BASE_URL") or "https://api.anthropic.com").rstrip("/")
WHYOPS_PROXY_TIMEOUT = float(os.environ.get("WHYOPS_PROXY_TIMEOUT") or 120)
WHYOPS_PROXY_STREAM_TIMEOUT = float(os.environ.get("WHYOPS_PROXY_STREAM_TIMEOUT") or 600)
OPENAI_API_KEY = os.environ.get("OPENAI_API_KEY") or None
ANTHROPIC_API_KEY = os.environ.get("ANTHROPIC_API_KEY") or None
WHYOPS_PROXY_CONVERSATIONS = int(os.environ.get("WHYOPS_PROXY_CONVERSATIONS") or 50_000)
# "0": relay OpenAI chat-completions streams as asked, without asking upstream for their usage.
WHYOPS_PROXY_STREAM_USAGE = (os.environ.get("WHYOPS_PROXY_STREAM_USAGE") or "1") != "0"
# Retention (storage/retention.py), both off when unset: traces idle for more days than this are
# deleted, and the oldest ones while the data takes more megabytes than this.
WHYOPS_RETENTION_DAYS = float(os.environ.get("WHYOPS_RETENTION_DAYS") or 0) or None
WHYOPS_MAX_DB_MB = float(os.environ.get("WHYOPS_MAX_DB_MB") or 0) or None

INSTALLED_APPS = [
    "daphne",
    "django.contrib.staticfiles",
    "channels",
    "ninja",  # serves Swagger UI from its own static files: /api/docs works offline
    "whyops_local",
]

MIDDLEWARE = [
    "whyops_local.http.middleware.CollapseSlashesMiddleware",
    "whyops_local.http.middleware.GuardMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves static/ with DEBUG off, under runserver (daphne) and any other server alike.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "whyops_local.urls"
ASGI_APPLICATION = "whyops_local.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [RESOURCES_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "whyops_local.pages.site.site_context",
            ]
        },
    }
]

SQLITE_PATH = DATA_DIR / "whyops.sqlite3"
if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], )}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": SQLITE_PATH,
            "OPTIONS": {
                # IMMEDIATE takes the write lock at BEGIN, so two writers queue on the busy
                # timeout instead of failing with "database is locked" on lock upgrade.
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                # auto_vacuum takes effect on a database without tables yet: pruning can give space back.
                "init_command": "PRAGMA auto_vacuum=INCREMENTAL; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
if os.environ.get("REDIS_URL"):
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [
            # A receive is a BZPOPMIN answered after 5 s when nothing came; redis-py's default socket timeout
            # is 5 s too, so a quiet channel's read timed out (and a message popped just then was lost).
            # Options in the URL (?socket_timeout=) still win.
            {"address": os.environ["REDIS_URL"], "socket_timeout": 30},
        ]}}
    }

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"

STATIC_URL = "/static/"
STATICFILES_DIRS = [RESOURCES_DIR / "static"]
# Served straight from static/ (no collectstatic step for a local tool); files are scanned at start-up.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Django logs every 5xx answer; the proxy relays upstream ones, which are no error of this server.
    "filters": {"exceptions_only": {"()": "django.utils.log.CallbackFilter", "callback": lambda r: bool(r.exc_info)}},
    "handlers": {"console": {"class": "logging.StreamHandler"},
                 "exceptions": {"class": "logging.StreamHandler", "filters": ["exceptions_only"]}},
    "loggers": {
        "whyops_local": {"handlers": ["console"], "level": os.environ.get("WHYOPS_LOG_LEVEL", "INFO")},
        # Unhandled errors of pages and API alike, with their traceback: Django sends them nowhere with DEBUG off.
        "django.request": {"handlers": ["exceptions"], "level": "ERROR", "propagate": False},
    },
}
