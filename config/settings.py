"""Countersign settings: one module, read from the environment (12-factor).

With no environment variables at all the project runs on SQLite in ``var/`` with Celery tasks
executed in-process, so ``make run`` works on a bare machine. ``DATABASE_URL`` and
``CELERY_BROKER_URL`` switch to PostgreSQL and a real Celery worker on Redis.
"""
import os
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("COUNTERSIGN_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)


def _secret_key() -> str:
    """In production the key comes only from the environment, and must be long enough to resist
    guessing (Django's own deploy check asks for 50 characters); a short one refuses to start."""
    key = os.environ.get("SECRET_KEY")
    if key:
        if not DEBUG and (len(key) < 50 or len(set(key)) < 5):
            raise ImproperlyConfigured("SECRET_KEY must be at least 50 random characters when DEBUG is off.")
        return key
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1" if DEBUG else "")
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DEBUG is off.")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served from our own static files
    "guardian",
    "simple_history",
    "axes",
    "django_celery_beat",
    "audit",
    "governance",
    "releases",
    "identity",
    "integrations",
    "compliance",
    "bench",
    "config.apps.SecurityConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.security.SecurityHeadersMiddleware",  # CSP, Permissions-Policy (config/security.py)
    "config.db_errors.DatabaseUnavailableMiddleware",  # a database outage answers 503, not 500
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "audit.middleware.RequestContextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # With DEBUG on, our 404 page instead of Django's technical one (config/errors.py).
    "config.errors.FriendlyErrorsMiddleware",
    # Last, as django-axes asks: it turns a lockout flagged during the view into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# With DEBUG on (the demo) error pages are still ours, not Django's technical pages, unless a
# developer asks for those (config/errors.py); tracebacks always go to the log.
COUNTERSIGN_TECHNICAL_ERROR_PAGES = env_bool("COUNTERSIGN_TECHNICAL_ERROR_PAGES", False)
DEFAULT_EXCEPTION_REPORTER = "config.errors.PortalExceptionReporter"

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "identity.sso.context",
            ],
        },
    },
]

def prepared_statements() -> dict:
    """PostgreSQL's connection options for server-side parameters and prepared statements (psycopg
    3): a statement a connection runs more than ``DATABASE_PREPARE_THRESHOLD`` times (default 5) is
    planned once for it, not at every call; planning was most of PostgreSQL's time on the write
    path (issue 21, docs/performance.md). ``DATABASE_PREPARED_STATEMENTS=0`` turns them off, behind
    a pooler in transaction mode that cannot keep them (PgBouncer before 1.21)."""
    if not env_bool("DATABASE_PREPARED_STATEMENTS", True):
        return {}
    return {"server_side_binding": True, "prepare_threshold": int(os.environ.get("DATABASE_PREPARE_THRESHOLD", "5"))}


DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"].setdefault("OPTIONS", {}).update(prepared_statements())
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "db.sqlite3",
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out username before any password is checked (django-axes).
    "config.lockout.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
# --- Single sign-on (OpenID Connect, mozilla-django-oidc; docs/identity.md) ----------------------
# Off unless OIDC_RP_CLIENT_ID is set: then people sign in through the provider, local passwords
# work only for the break-glass superusers (each use raises an alert) unless OIDC_LOCAL_PASSWORDS,
# and sign-off steps up at the provider (prompt=login, max_age=0, acr_values) instead of asking
# for the password again.
OIDC_ENABLED = bool(os.environ.get("OIDC_RP_CLIENT_ID"))
OIDC_RP_CLIENT_ID = os.environ.get("OIDC_RP_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = os.environ.get("OIDC_RP_CLIENT_SECRET", "")
OIDC_OP_ISSUER = os.environ.get("OIDC_OP_ISSUER", "").rstrip("/")
OIDC_OP_AUTHORIZATION_ENDPOINT = os.environ.get("OIDC_OP_AUTHORIZATION_ENDPOINT", f"{OIDC_OP_ISSUER}/authorize")
OIDC_OP_TOKEN_ENDPOINT = os.environ.get("OIDC_OP_TOKEN_ENDPOINT", f"{OIDC_OP_ISSUER}/token")
OIDC_OP_USER_ENDPOINT = os.environ.get("OIDC_OP_USER_ENDPOINT", f"{OIDC_OP_ISSUER}/userinfo")
OIDC_OP_JWKS_ENDPOINT = os.environ.get("OIDC_OP_JWKS_ENDPOINT", f"{OIDC_OP_ISSUER}/jwks")
OIDC_OP_LOGOUT_ENDPOINT = os.environ.get("OIDC_OP_LOGOUT_ENDPOINT", "")
OIDC_RP_SIGN_ALGO = os.environ.get("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = "openid email profile"
OIDC_USE_PKCE = True
OIDC_CREATE_USER = env_bool("OIDC_CREATE_USER", False)  # accounts come from SCIM
OIDC_TIMEOUT = 10
OIDC_VERIFY_SSL = env_bool("OIDC_VERIFY_SSL", True)
OIDC_LOCAL_PASSWORDS = env_bool("OIDC_LOCAL_PASSWORDS", False)
# Sign-off step-up: the acr values asked for (acr_values) and accepted, per environment tier, and
# the amr values of which one must be present ("*": any tier). Empty: any acr/amr.
OIDC_SIGNOFF_ACR = {
    "production": [v for v in os.environ.get("OIDC_SIGNOFF_ACR_PRODUCTION", "").split(",") if v],
    "*": [v for v in os.environ.get("OIDC_SIGNOFF_ACR", "").split(",") if v],
}
OIDC_SIGNOFF_AMR = {
    "production": [v for v in os.environ.get("OIDC_SIGNOFF_AMR_PRODUCTION", "").split(",") if v],
    "*": [v for v in os.environ.get("OIDC_SIGNOFF_AMR", "").split(",") if v],
}
OIDC_SIGNOFF_MAX_SECONDS = int(os.environ.get("OIDC_SIGNOFF_MAX_SECONDS", "600"))  # a sign-off's round trip
if OIDC_ENABLED:
    AUTHENTICATION_BACKENDS = [
        "config.lockout.LockoutBackend",
        "identity.sso.ProviderBackend",
        "identity.sso.LocalPasswordBackend",
        "guardian.backends.ObjectPermissionBackend",
    ]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
# One date format, portal and admin alike, with the time zone shown (config/formats/en/formats.py).
FORMAT_MODULE_PATH = ["config.formats"]
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = VAR_DIR / "media"

# Guardian: no anonymous user row; object permissions are derived from role assignments only.
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = True

SIMPLE_HISTORY_HISTORY_ID_USE_UUID = False
# History is evidence: no admin page may write a past version back.
SIMPLE_HISTORY_REVERT_DISABLED = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "governance.authentication.ApiTokenAuthentication",
        "governance.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Request bodies are JSON only (issue 19 item 3): one media type per operation in the OpenAPI
    # document, so a generated client sends JSON; a form body is 415 {detail}. SCIM (/scim/v2/, plain
    # Django views on application/scim+json) and the platforms' webhooks (raw signed bytes) parse
    # their own bodies; the portal's forms are Django forms.
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "core.api.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Rates are read from COUNTERSIGN_THROTTLE_RATES on every request (config/throttling.py).
    "DEFAULT_THROTTLE_CLASSES": ["config.throttling.AnonRateThrottle", "config.throttling.UserRateThrottle"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Countersign API",
    "DESCRIPTION": "Separation-of-duties governance for software delivery.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # The shared error responses on every operation (core/openapi.py), after the enum names.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "core.openapi.shared_responses"],
    "GET_LIB_DOC_EXCLUDES": "core.openapi.lib_doc_excludes",
    "ENUM_NAME_OVERRIDES": {
        "StatusEnum": "governance.models.RoleAssignment.Status",
        "ControlChangeStatusEnum": "governance.models.ControlChange.Status",
    },
    # Swagger UI (/api/docs/) comes from drf-spectacular-sidecar, pinned in requirements.txt and
    # served as our own static files: no CDN, works offline. Its init script is served from our
    # origin too (SpectacularSwaggerSplitView), so the page runs no inline script.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
# Swagger UI at /api/docs/: on by default (every file is ours); API_DOCS=0 turns it off. The schema
# at /api/schema/ is always served.
API_DOCS = env_bool("API_DOCS", True)

# Celery: no broker means tasks run eagerly, in-process (the embedded default).
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
if not CELERY_BROKER_URL:
    # Embedded mode: beat (if started) hands tasks to itself and runs them in-process.
    CELERY_BROKER_URL = "memory://"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# With acks_late, a task whose worker died is handed out again after this many seconds.
# Redis checks for such tasks every CELERY_UNACKED_RESTORE_SECONDS (kombu's default period is 100).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600")),
    "unacked_restore_interval": int(os.environ.get("CELERY_UNACKED_RESTORE_SECONDS", "100")),
    "unacked_restore_throttle": 1,
    # Handing a task over (the outbox's dispatch, in the web request) tries the broker twice at once
    # and gives up: with Redis down an approval still commits in milliseconds, and the outbox sweep
    # hands the message over later. (kombu's default keeps retrying for the 4 s connect timeout,
    # per message.) The worker's own reconnection loop is separate and unaffected.
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 1,
    "interval_max": 1,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_TIMEZONE = "UTC"

# Governance knobs (RULES.md section 2).
COUNTERSIGN_MAX_PRIVILEGED_GRANT_DAYS = int(os.environ.get("COUNTERSIGN_MAX_PRIVILEGED_GRANT_DAYS", "90"))
COUNTERSIGN_REVIEW_BATCH_SIZE = int(os.environ.get("COUNTERSIGN_REVIEW_BATCH_SIZE", "1000"))
COUNTERSIGN_API_TOKEN_DEFAULT_DAYS = int(os.environ.get("COUNTERSIGN_API_TOKEN_DEFAULT_DAYS", "90"))
# Controls (RULES.md section 8): a weakening change waits this long for its second person.
COUNTERSIGN_CONTROL_PROPOSAL_HOURS = int(os.environ.get("COUNTERSIGN_CONTROL_PROPOSAL_HOURS", "72"))
# Where people reach the portal: the base of links sent by e-mail (password reset links).
COUNTERSIGN_BASE_URL = os.environ.get("COUNTERSIGN_BASE_URL", "http://127.0.0.1:8000")
# The OpenAPI document's `servers`: where the API answers (the origin; its paths carry /api/v1/).
SPECTACULAR_SETTINGS["SERVERS"] = [
    {"url": COUNTERSIGN_BASE_URL, "description": "This Countersign (COUNTERSIGN_BASE_URL)."},
]
# A password reset link works once, for this long (K5: administrators never set passwords).
PASSWORD_RESET_TIMEOUT = int(os.environ.get("PASSWORD_RESET_TIMEOUT", str(24 * 3600)))
# E2: unregistered_deployment alerts one reporter may raise in an hour through deployment-reports/;
# further reports are folded into one deployment_report_flood alert (docs/rules.md).
COUNTERSIGN_DEPLOYMENT_REPORT_ALERTS_PER_HOUR = int(os.environ.get("COUNTERSIGN_DEPLOYMENT_REPORT_ALERTS_PER_HOUR", "10"))
# Floor endpoints for `make bench` (bench/urls.py) under /bench/: only the bench's own server turns
# this on; never set it in a deployment.
COUNTERSIGN_BENCH_ENDPOINTS = env_bool("COUNTERSIGN_BENCH_ENDPOINTS", False)
# Only the test suite turns this on (conftest.py), so its runner may empty the audit table between
# transactional tests (TRUNCATE on PostgreSQL, DELETE on SQLite). No environment variable reaches
# it: a deployment cannot switch it on. UPDATE is refused whatever it says.
COUNTERSIGN_AUDIT_PURGE_ALLOWED = False

# Ed25519 key that signs audit seals and evidence bundles (RULES.md L2, L3). In development it is
# generated into var/ on first use; with DEBUG off the file must exist (mounted as a secret).
SIGNING_KEY_FILE = Path(os.environ.get("SIGNING_KEY_FILE", VAR_DIR / "signing_key.pem"))
SIGNING_KEY_AUTOGENERATE = env_bool("SIGNING_KEY_AUTOGENERATE", DEBUG)
# The origin line of the signed checkpoints (audit/checkpoint.py): names this log to auditors and
# witnesses; keep it stable, every earlier checkpoint carries it.
AUDIT_CHECKPOINT_ORIGIN = os.environ.get(
    "AUDIT_CHECKPOINT_ORIGIN", f"{urlsplit(COUNTERSIGN_BASE_URL).netloc or 'countersign'}/audit"
)
# How long a signed approval attestation counts for at most (integrations; an approval TTL shortens it).
COUNTERSIGN_ATTESTATION_TTL_HOURS = int(os.environ.get("COUNTERSIGN_ATTESTATION_TTL_HOURS", "168"))
# Countersign as a GitHub custom deployment protection rule (integrations/github_app.py,
# docs/integrations.md): the GitHub App's id and private key (PEM, or a file holding it), its webhook
# secret (deliveries signed with it are accepted for linked repositories), and the REST API's base
# URL (GitHub Enterprise Server: https://<host>/api/v3).
COUNTERSIGN_GITHUB_APP_ID = os.environ.get("COUNTERSIGN_GITHUB_APP_ID", "")
COUNTERSIGN_GITHUB_PRIVATE_KEY = os.environ.get("COUNTERSIGN_GITHUB_PRIVATE_KEY", "")
COUNTERSIGN_GITHUB_PRIVATE_KEY_FILE = os.environ.get("COUNTERSIGN_GITHUB_PRIVATE_KEY_FILE", "")
COUNTERSIGN_GITHUB_WEBHOOK_SECRET = os.environ.get("COUNTERSIGN_GITHUB_WEBHOOK_SECRET", "")
COUNTERSIGN_GITHUB_API_URL = os.environ.get("COUNTERSIGN_GITHUB_API_URL", "https://api.github.com").rstrip("/")
COUNTERSIGN_GITHUB_TIMEOUT_SECONDS = float(os.environ.get("COUNTERSIGN_GITHUB_TIMEOUT_SECONDS", "10"))
# An answer GitHub did not take is tried again with backoff; an alert is raised after this many
# failed attempts in a row, and the request is given up (left waiting, alert open) after the second.
COUNTERSIGN_GITHUB_ALERT_AFTER_FAILURES = int(os.environ.get("COUNTERSIGN_GITHUB_ALERT_AFTER_FAILURES", "3"))
COUNTERSIGN_GITHUB_MAX_ATTEMPTS = int(os.environ.get("COUNTERSIGN_GITHUB_MAX_ATTEMPTS", "8"))
# Reconciliation (issue 16, item 5): a platform-reported deployment counts as deployed through
# Countersign when a Deployment of its change started within this many minutes of it.
COUNTERSIGN_RECONCILIATION_WINDOW_MINUTES = int(os.environ.get("COUNTERSIGN_RECONCILIATION_WINDOW_MINUTES", "60"))
# GitLab's deployment approvals (issue 16, item 3): the API root of the instance and the service
# account's access token (api scope) Countersign approves or rejects blocked deployments with.
COUNTERSIGN_GITLAB_API_URL = os.environ.get("COUNTERSIGN_GITLAB_API_URL", "https://gitlab.com/api/v4")
COUNTERSIGN_GITLAB_TOKEN = os.environ.get("COUNTERSIGN_GITLAB_TOKEN", "")
# Finished evidence bundles: private files, served only through the permission-checked download.
EVIDENCE_ROOT = Path(os.environ.get("EVIDENCE_ROOT", VAR_DIR / "evidence"))
EVIDENCE_BATCH_SIZE = int(os.environ.get("EVIDENCE_BATCH_SIZE", "2000"))

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "countersign@localhost")

# --- Hardening (docs/security.md, "Hardening") ---------------------------------------------------

SESSION_COOKIE_HTTPONLY = True
# A session lasts at most SESSION_COOKIE_AGE (8 h) on the server, and ends when the browser closes.
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_COOKIE_AGE", str(int(timedelta(hours=8).total_seconds()))))
SESSION_EXPIRE_AT_BROWSER_CLOSE = env_bool("SESSION_EXPIRE_AT_BROWSER_CLOSE", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # Only advertises eligibility; submitting the domain to the preload list is a separate, manual step.
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Brute-force lockout (django-axes; config/lockout.py). AXES_FAILURE_LIMIT wrong passwords within
# the cool-off, counted per username and IP and per username alone, lock the login page and the
# sign-off password for that username; each new lockout raises a `login_lockout` alert. Failures
# are kept in the database, so every web worker sees the same count.
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "username"]
AXES_LOCKOUT_CALLABLE = "config.lockout.lockout_response"
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False
# Lockouts reach people as alerts; `manage.py axes_reset_username NAME` lifts one early. No admin pages.
AXES_ENABLE_ADMIN = False


def env_rate(name: str, default: str) -> str | None:
    value = os.environ.get(name, default).strip()
    return None if value.lower() in {"", "off", "none", "0"} else value


# DRF throttling (config/throttling.py): per user for authenticated clients, per IP for anonymous
# ones; DRF's syntax ("1200/min"), "off" disables one (load runs).
COUNTERSIGN_THROTTLE_RATES = {
    "user": env_rate("THROTTLE_USER_RATE", "1200/min"),
    "anon": env_rate("THROTTLE_ANON_RATE", "60/min"),
}

# Throttle counters live in the cache: one per process unless CACHE_URL (or REDIS_URL) names a
# Redis, which every gunicorn worker then shares. Production should set it.
CACHE_URL = os.environ.get("CACHE_URL") or os.environ.get("REDIS_URL", "")
if CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "countersign",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO").upper()},
    # django-axes logs every login at INFO; its warnings (failures, lockouts) are the useful part.
    "loggers": {"axes": {"level": "WARNING"}},
}
