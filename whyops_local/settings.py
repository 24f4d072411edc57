"""Settings read from the environment; see README "Configuration"."""

import os
import secrets
from pathlib import Path

import dj_database_url
import platformdirs

BASE_DIR = Path(__file__).resolve().parent.parent

DATA_DIR = Path(os.environ.get("WHYOPS_DATA_DIR") or platformdirs.user_data_dir("whyops-local", appauthor=False))
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    # Generated once per data dir so sessions survive restarts and nothing secret is committed.
    path = DATA_DIR / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        key = secrets.token_urlsafe(50)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key)
        return key
    

SECRET_KEY = _secret_key()
DEBUG = os.environ.get("WHYOPS_DEBUG", "") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", *filter(None, os.environ.get("WHYOPS_ALLOWED_HOSTS", "").split(","))]

# Optional shared key for ingest and proxy routes (protocol section 2).
WHYOPS_API_KEY = os.environ.get("WHYOPS_API_KEY") or None
# Largest request body accepted by the ingest API; larger ones get 413.
WHYOPS_MAX_BODY_BYTES = int(os.environ.get("WHYOPS_MAX_BODY_BYTES", 32 * 1024 * 1024))
DATA_UPLOAD_MAX_MEMORY_SIZE = WHYOPS_MAX_BODY_BYTES
# Database writes run on one thread per process (see whyops_local/writer.py); tests turn it off.
WHYOPS_DEDICATED_WRITER = True

INSTALLED_APPS = [
    "daphne",
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "channels",
    "whyops_local",
]

MIDDLEWARE = [
    "whyops_local.middleware.CollapseSlashesMiddleware",
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
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "whyops_local.views.common.site_context",
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
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
if os.environ.get("REDIS_URL"):
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [os.environ["REDIS_URL"]]}}
    }

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Served straight from static/ (no collectstatic step for a local tool); files are scanned at start-up.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"whyops_local": {"handlers": ["console"], "level": os.environ.get("WHYOPS_LOG_LEVEL", "INFO")}},
}
