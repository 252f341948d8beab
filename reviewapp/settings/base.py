"""Configuration read from the environment only. The README lists every variable."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DATA_DIR = Path(os.environ.get("REVIEWAPP_DATA_DIR", BASE_DIR / ".data"))


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number") from exc


DEBUG = env_bool("DEBUG", False)
DEMO_MODE = env_bool("REVIEWAPP_DEMO", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "pgtrigger",
    "axes",  # per-account sign-in lockout (README "Sign-in")
    "reviewapp.audit",
    "reviewapp.people",
    "reviewapp.policy",
    "reviewapp.outbox",
    "reviewapp.cases",
    "reviewapp.core",
    "django_filters",
    "flags",
    "appeals",
    "reviewapp.forum",  # Forum sharing (STIX 2.1 over TAXII 2.1); above flags and appeals, below core
    # The compliance console (reviewapp/compliance): above forum, below core; its areas that store rows are apps.
    "reviewapp.compliance",
    "reviewapp.compliance.verification",
    "reviewapp.compliance.quality",
    "reviewapp.compliance.retention",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Our error pages with DEBUG on too; a body over DATA_UPLOAD_MAX_MEMORY_SIZE is 413. Before CSRF reads the form.
    "reviewapp.core.error_pages.ProjectErrorPagesMiddleware",
    # The database unreachable or its connection dropped: 503 + Retry-After, never a 500 (core/database_unavailable.py)
    "reviewapp.core.database_unavailable.DatabaseUnavailableMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",  # Content-Security-Policy (CONTENT_SECURITY_POLICY below)
    "reviewapp.core.middleware.NoStoreMiddleware",  # Cache-Control: no-store on NO_STORE_VIEWS
    "django_ratelimit.middleware.RatelimitMiddleware",  # turns Ratelimited into a 429 page (RATELIMIT_VIEW)
    "reviewapp.people.middleware.PasswordChangeRequiredMiddleware",  # a one-time password must be changed first
    "reviewapp.people.middleware.StaffTokenUseMiddleware",  # a staff API token's day of last use, once a day
    "axes.middleware.AxesMiddleware",  # answers a locked-out sign-in (AXES_LOCKOUT_CALLABLE); keep it last
]

ROOT_URLCONF = "reviewapp.urls"
WSGI_APPLICATION = "reviewapp.wsgi.application"

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
                "reviewapp.people.navigation.navigation",
            ],
        },
    },
]

# --- Database: DATABASE_URL, else the embedded PostgreSQL under .data/pg -------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
    _default_broker = "sqla+" + DATABASE_URL.replace("postgresql://", "postgresql+psycopg://", 1).replace(
        "postgres://", "postgresql+psycopg://", 1
    )
else:
    from reviewapp.embedded import ensure_running

    _embedded = ensure_running(DATA_DIR)
    DATABASES = {"default": _embedded.database_settings()}
    _default_broker = _embedded.broker_url()
# Opt-in: a read replica for the compliance console's read-only pages (reviewapp/compliance/replica.py); writes,
# and every other read, stay on the primary. Tests mirror it onto the test database.
COMPLIANCE_REPLICA_URL = os.environ.get("COMPLIANCE_REPLICA_URL", "")
if COMPLIANCE_REPLICA_URL:
    DATABASES["compliance_replica"] = {
        **dj_database_url.parse(COMPLIANCE_REPLICA_URL, conn_max_age=60, conn_health_checks=True),
        "TEST": {"MIRROR": "default"},
    }
DATABASE_ROUTERS = ["reviewapp.compliance.replica.ComplianceReplicaRouter"]
# A server that does not answer costs a request this long, then a 503 (core/database_unavailable.py), never a
# hang: libpq's connect_timeout (2 s at least). A query in progress when the server shuts down fails at once
# (a fast shutdown ends every backend); TCP keepalives notice a server host that vanished without a word.
DATABASE_CONNECT_TIMEOUT_SECONDS = env_int("DATABASE_CONNECT_TIMEOUT_SECONDS", 5)
for _option, _value in {"connect_timeout": DATABASE_CONNECT_TIMEOUT_SECONDS, "keepalives": 1, "keepalives_idle": 30,
                        "keepalives_interval": 10, "keepalives_count": 3}.items():
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(_option, _value)  # a DATABASE_URL's own ?… wins
# What a 503 for an unreachable database tells the client to wait before trying again.
DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS = env_int("DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS", 5)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "people.User"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out username before any password check
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
# No guardian "anonymous" user: account holders sign in by signed link (appeals), never anonymously.
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False
GUARDIAN_RENDER_403 = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "people:login"
LOGIN_REDIRECT_URL = "core:home"
LOGOUT_REDIRECT_URL = "people:login"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600)  # one working day
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

# --- Cache (rate limits): CACHE_URL (redis://…), else a table in the same PostgreSQL --------------
CACHE_URL = os.environ.get("CACHE_URL", "")
if CACHE_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}}
else:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "reviewapp_cache"}
    }
RATELIMIT_USE_CACHE = "default"
RATELIMIT_VIEW = "reviewapp.core.views.rate_limited"
LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "10/m")
# Refused staff API tokens per client address; past it, token requests from there get 429 (people/auth.py).
API_TOKEN_FAILURE_RATE_LIMIT = os.environ.get("API_TOKEN_FAILURE_RATE_LIMIT", "20/m")
# How many reverse proxies in front of the app append to X-Forwarded-For. 0: the header is ignored and
# REMOTE_ADDR is the client; N: the client is the Nth address from the right (reviewapp/people/addresses.py).
TRUSTED_PROXY_HOPS = env_int("TRUSTED_PROXY_HOPS", 0)
RATELIMIT_IP_META_KEY = "reviewapp.people.addresses.client_ip"
# Per-account lockout (django-axes): this many failed sign-ins for one username, from any addresses, lock
# it (the right password too) until an admin unlocks it on /staff/ or the cool-off passes since the last one.
AXES_FAILURE_LIMIT = env_int("LOGIN_ACCOUNT_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 30))
AXES_LOCKOUT_PARAMETERS = ["username"]  # per address is django-ratelimit's job (LOGIN_RATE_LIMIT)
AXES_CLIENT_IP_CALLABLE = "reviewapp.people.addresses.client_ip"
AXES_LOCKOUT_CALLABLE = "reviewapp.people.views.login_locked_out"
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = True  # successful sign-ins are in the audit trail already
AXES_ENABLE_ADMIN = False  # unlocking is audited, on /staff/
AXES_VERBOSE = False
# axes.W006 asks for ip_address in AXES_LOCKOUT_PARAMETERS: addresses are limited by django-ratelimit, whose
# window passes, rather than locked for the cool-off (a shared office address would lock out everyone in it).
SILENCED_SYSTEM_CHECKS = ["axes.W006"]

# --- Browser-facing headers ------------------------------------------------------------------------
# Our pages' scripts and styles are static files: nothing inline runs (django-csp). /api/docs/ relaxes
# style-src for Swagger UI's own inline styles (reviewapp/urls.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
# Views whose answers show evidence or personal data: Cache-Control no-store (reviewapp/core/middleware.py).
NO_STORE_VIEWS = [
    "review:case", "review:case-evidence", "review:campaign", "review:statement", "review:statement-dsa",
    "appeal-review:*",       # staff appeal pages: grounds, messages, attachments, evidence
    "appeals:*",             # the holder portal: statements, appeals, attachments, sign-in links
    "detectors:token-*",     # a new token is shown once
    "people:staff-create", "people:staff-password",  # a one-time password is shown once
    "people:api-token*",     # a staff API token's secret is shown once
    "case-*", "staff-appeal-*", "holder_api:*",      # the case, appeal and holder APIs
]

# --- REST framework and OpenAPI ------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "reviewapp.core.openapi.AutoSchema",  # text fields as the serializers judge them
    # The session (CSRF checked), then a staff API token (Authorization: Token …; reviewapp/people/auth.py).
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication",
                                       "reviewapp.people.auth.StaffTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "reviewapp API",
    "DESCRIPTION": (
        "Case management against adversarial distillation. Detectors post flags with a bearer token; "
        "staff read cases with their session or a staff API token (`Authorization: Token …`). Every state change "
        "is recorded in a hash-chained audit trail."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "CaseStateEnum": "reviewapp.cases.models.Case.State",
        "DecisionStateEnum": "reviewapp.cases.models.Decision.State",
        "AppealStateEnum": "appeals.models.Appeal.State",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "flags.openapi.add_flag_components",
        "reviewapp.core.openapi.document_refusals",  # every 4xx an operation can answer, with its body
    ],
}

# --- Flag ingestion --------------------------------------------------------------------------------
# 5,000 flags of ~500 bytes are ~2.5 MB; evidence (≤ 64 KB each) can make a legal batch far larger.
FLAGS_MAX_BODY_BYTES = env_int("FLAGS_MAX_BODY_BYTES", 32 * 1024 * 1024)
# Views that read and bound their own body (above); every other request body is bounded by Django's
# DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB of form fields or JSON; appeal files count separately): 413 past it.
OWN_BODY_LIMIT_VIEWS = ["flags-ingest"]
# Flags attached to cases per grouping transaction.
FLAGS_GROUP_BATCH_SIZE = env_int("FLAGS_GROUP_BATCH_SIZE", 1000)
# Pending flags are split by account into this many partitions, each grouped by one task at a time, so that
# concurrent groupers never share an account (flags/tasks.py). About the cores PostgreSQL and the workers have.
FLAGS_GROUP_PARTITIONS = env_int("FLAGS_GROUP_PARTITIONS", 2)

# --- Outbox: enforcement webhooks and emails (DESIGN.md invariant 7) --------------------------------
# Where enforcement actions are POSTed, signed with the secret (README "Enforcement delivery").
# Empty: messages wait (and are retried) until it is set. dev.py points it at the local receiver.
ENFORCEMENT_WEBHOOK_URL = os.environ.get("ENFORCEMENT_WEBHOOK_URL", "")
ENFORCEMENT_WEBHOOK_SECRET = os.environ.get("ENFORCEMENT_WEBHOOK_SECRET", "")
# Retries wait base, 2×base, 4×base, … seconds; after the last attempt a message is "failed".
OUTBOX_RETRY_BASE_SECONDS = env_int("OUTBOX_RETRY_BASE_SECONDS", 10)
OUTBOX_MAX_ATTEMPTS = env_int("OUTBOX_MAX_ATTEMPTS", 12)
# However large the doubling gets, a pending message is tried at least this often (6 hours).
OUTBOX_RETRY_MAX_SECONDS = env_int("OUTBOX_RETRY_MAX_SECONDS", 6 * 3600)
# Email to account holders, through Django's backend: SMTP configured from the environment.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
# A stalled SMTP server must not hold a worker forever; the message is retried instead.
EMAIL_TIMEOUT = 30
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Trust & Safety <trust-safety@reviewapp.invalid>")

# --- Policy ---------------------------------------------------------------------------------------
# The documented ToS policy (Markdown with front matter); `manage.py load_policies` publishes changes.
POLICIES_DIR = BASE_DIR / "policies"

# --- Review -------------------------------------------------------------------------------------------
# Where account holders reach this deployment (links in notices and statements).
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# Appeal attachments live outside the web root and are served only through a view that checks.
APPEAL_ATTACHMENTS_DIR = Path(os.environ.get("APPEAL_ATTACHMENTS_DIR", DATA_DIR / "appeal-attachments"))
APPEAL_ATTACHMENT_MAX_BYTES = env_int("APPEAL_ATTACHMENT_MAX_BYTES", 5 * 1024 * 1024)
APPEAL_ATTACHMENT_MAX_FILES = 5
# "Email me a new link" requests per address and per IP.
HOLDER_LINK_RATE_LIMIT = os.environ.get("HOLDER_LINK_RATE_LIMIT", "5/h")
# A sign-in link for an account holder works once, for this many hours.
HOLDER_LINK_HOURS = env_int("HOLDER_LINK_HOURS", 72)
# A campaign decision acting on more accounts than this waits for a senior reviewer's second approval.
CAMPAIGN_DECISION_APPROVAL_THRESHOLD = env_int("CAMPAIGN_DECISION_APPROVAL_THRESHOLD", 10)
# A claim lapses after this idle time and the case returns to its queue.
CASE_CLAIM_LEASE_MINUTES = env_int("CASE_CLAIM_LEASE_MINUTES", 30)

# --- Celery ---------------------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or _default_broker
# Queue names get a prefix so that a test session never shares queues with a running `make run`.
CELERY_QUEUE_PREFIX = os.environ.get("CELERY_QUEUE_PREFIX", "")
CELERY_QUEUES = ("ingest", "outbox", "forum", "maintenance")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Threads, not prefork. On a broker without an event loop (kombu's SQLAlchemy transport, the embedded
# default) prefork runs billiard's blocking pool, whose children share one inqueue behind a
# cross-process lock that an idle child holds while it waits; a child SIGKILLed then (OOM killer, a
# hard time limit, an operator) leaves the lock taken, and every respawned child blocks on it for good
# (billiard #104, #457; tests/reliability/test_pool_kill.py). Threads share no such lock, and the work
# here waits on PostgreSQL and peers rather than computing. Scale out with more worker processes.
CELERY_WORKER_POOL = "threads"
# Threads per worker process, when the command line gives no --concurrency.
CELERY_WORKER_CONCURRENCY = env_int("CELERY_WORKER_CONCURRENCY", 4)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# No gradual restore of the prefetch count after a lost broker connection. With it on (Celery's default), a task
# that was running when the connection dropped, finishing on a pool *thread*, calls basic.qos on the new AMQP
# connection — a synchronous call that reads the socket from that thread while the worker's event loop reads it
# too; one steals the other's frame and the loop blocks in a read forever: the node takes no task and answers no
# ping, for good. Measured with RabbitMQ SIGKILLed under two busy nodes: 3 stalls in 15 runs with it, 0 in 16
# without (tests/reliability/test_broker_restart.py). Prefetch is 1 per thread, so nothing is over-fetched anyway.
CELERY_WORKER_ENABLE_PREFETCH_COUNT_REDUCTION = False
# Redis redelivers unacknowledged tasks only after this; the outbox reconciler is what guarantees delivery.
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)} if CELERY_BROKER_URL.startswith("redis") else {}
)
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
# /healthz answers 503 naming the part past its threshold (reviewapp/core/health.py). Beat queues a
# heartbeat task this often; a heartbeat left unanswered longer than the silence threshold means no
# worker takes work.
HEALTH_HEARTBEAT_INTERVAL_SECONDS = env_int("HEALTH_HEARTBEAT_INTERVAL_SECONDS", 15)
HEALTH_WORKER_MAX_SILENCE_SECONDS = env_int("HEALTH_WORKER_MAX_SILENCE_SECONDS", 120)
# How long the oldest undelivered outbox message may have been due (a message in back-off is not due).
HEALTH_OUTBOX_MAX_AGE_SECONDS = env_int("HEALTH_OUTBOX_MAX_AGE_SECONDS", 300)
# How long the oldest flag may wait for its case (set-aside flags do not count).
HEALTH_PENDING_FLAG_MAX_AGE_SECONDS = env_int("HEALTH_PENDING_FLAG_MAX_AGE_SECONDS", 600)
# How long a committed audit event may wait for the sequencer (normally milliseconds; beat runs it every second).
HEALTH_AUDIT_SEQUENCE_MAX_AGE_SECONDS = env_int("HEALTH_AUDIT_SEQUENCE_MAX_AGE_SECONDS", 60)
# GET /metrics (Prometheus, reviewapp/core/metrics.py) answers loopback, or a scrape that sends
# "Authorization: Bearer <METRICS_TOKEN>" when this is set; every other request gets 403.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
FLAGS_RECONCILE_INTERVAL = timedelta(seconds=env_int("FLAGS_RECONCILE_INTERVAL_SECONDS", 30))
OUTBOX_RECONCILE_INTERVAL = timedelta(seconds=env_int("OUTBOX_RECONCILE_INTERVAL_SECONDS", 15))
# Only events after the last checkpoint are unwitnessed: checkpoint every minute in which the chain grew.
AUDIT_CHECKPOINT_INTERVAL = timedelta(seconds=env_int("AUDIT_CHECKPOINT_INTERVAL_SECONDS", 60))

# --- Audit ----------------------------------------------------------------------------------------
# Signed checkpoints of the chain head are appended to this file, outside the database.
AUDIT_CHECKPOINT_FILE = Path(os.environ.get("AUDIT_CHECKPOINT_FILE", DATA_DIR / "audit-checkpoints.jsonl"))
AUDIT_CHECKPOINT_KEY = os.environ.get("AUDIT_CHECKPOINT_KEY", "")
# A copy of each checkpoint is POSTed (through the outbox, signed like the enforcement webhook with this
# secret) to a witness outside this deployment; `verify_audit --witness` GETs its copies back. Optional.
AUDIT_WITNESS_URL = os.environ.get("AUDIT_WITNESS_URL", "")
AUDIT_WITNESS_SECRET = os.environ.get("AUDIT_WITNESS_SECRET", "")

# --- Forum sharing (reviewapp/forum, DESIGN.md invariant 6) --------------------------------------------
# The Forum-wide pseudonymisation key (HMAC-SHA256) and its id, from the environment only: never stored in the
# database. Empty: nothing that carries a pseudonym can be built (dev.py has a demo key).
FORUM_PSEUDONYM_KEY = os.environ.get("FORUM_PSEUDONYM_KEY", "")
FORUM_PSEUDONYM_KEY_ID = os.environ.get("FORUM_PSEUDONYM_KEY_ID", "")
# Account pseudonyms leave only for a cluster of at least this many included accounts.
FORUM_MIN_CLUSTER_SIZE = env_int("FORUM_MIN_CLUSTER_SIZE", 5)
# Volume statistics: a count below this is suppressed ("fewer than N"), others are rounded (2 significant digits).
FORUM_SMALL_COUNT = env_int("FORUM_SMALL_COUNT", 10)
# Who we are in bundles (the sharer's STIX identity).
FORUM_SHARER_NAME = os.environ.get("FORUM_SHARER_NAME", "reviewapp trust & safety")
# The Forum hub: a TAXII 2.1 API root, basic-auth credentials, and one collection per trust group as JSON
# {"<collection id>": {"name": "...", "url": "<api root>/collections/<id>/"}} ("url" defaults to the API root's).
FORUM_TAXII_API_ROOT = os.environ.get("FORUM_TAXII_API_ROOT", "")
FORUM_TAXII_USER = os.environ.get("FORUM_TAXII_USER", "")
FORUM_TAXII_PASSWORD = os.environ.get("FORUM_TAXII_PASSWORD", "")
FORUM_COLLECTIONS = json.loads(os.environ.get("FORUM_COLLECTIONS") or "{}")
# A request to the hub that has not answered by then counts as "hub down" (the push is retried).
FORUM_TAXII_TIMEOUT_SECONDS = env_int("FORUM_TAXII_TIMEOUT_SECONDS", 10)
# Inbound (reviewapp/forum/inbound.py): how often beat pulls every collection, and the largest Hamming distance
# between an inbound prompt fingerprint (64-bit simhash) and local flag evidence that counts as a match (0-3:
# the index splits the 64 bits into four 16-bit bands; pigeonhole guarantees every hash within 3 is found).
FORUM_PULL_INTERVAL_SECONDS = env_int("FORUM_PULL_INTERVAL_SECONDS", 300)
FORUM_SIMHASH_MAX_DISTANCE = env_int("FORUM_SIMHASH_MAX_DISTANCE", 3)

# --- Compliance: detector calibration (reviewapp/compliance/quality) -----------------------------------
# A detector version's overturn rate (overturned ÷ decided appeals of decisions on its cases) at or above this
# share raises an alert, once it has at least the minimum number of decided appeals; beat checks this often.
try:
    COMPLIANCE_OVERTURN_ALERT = float(os.environ.get("COMPLIANCE_OVERTURN_ALERT") or 0.2)
except ValueError as exc:
    raise ImproperlyConfigured("COMPLIANCE_OVERTURN_ALERT is not a number (a share, e.g. 0.2)") from exc
COMPLIANCE_OVERTURN_ALERT_MIN_APPEALS = env_int("COMPLIANCE_OVERTURN_ALERT_MIN_APPEALS", 5)
COMPLIANCE_CALIBRATION_CHECK_SECONDS = env_int("COMPLIANCE_CALIBRATION_CHECK_SECONDS", 300)

# --- Compliance: retention (reviewapp/compliance/retention; DESIGN.md invariant 8) ------------------------------
# Evidence behind a decision is kept for its clauses' evidence_retention_days (policies/); evidence of a case closed
# without any decision, or of a flag set aside, for RETENTION_UNDECIDED_EVIDENCE_DAYS. Delivered email bodies (they
# hold sign-in links and personal data) for RETENTION_EMAIL_BODY_DAYS after delivery. Beat purges daily at
# RETENTION_PURGE_HOUR:RETENTION_PURGE_MINUTE UTC, RETENTION_PURGE_BATCH_SIZE rows per transaction.
RETENTION_UNDECIDED_EVIDENCE_DAYS = env_int("RETENTION_UNDECIDED_EVIDENCE_DAYS", 90)
RETENTION_EMAIL_BODY_DAYS = env_int("RETENTION_EMAIL_BODY_DAYS", 7)
RETENTION_PURGE_BATCH_SIZE = env_int("RETENTION_PURGE_BATCH_SIZE", 500)
RETENTION_PURGE_HOUR = env_int("RETENTION_PURGE_HOUR", 3)
RETENTION_PURGE_MINUTE = env_int("RETENTION_PURGE_MINUTE", 30)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # axes logs each failed sign-in as a warning; those are in the audit trail already.
    "loggers": {"pgserver": {"level": "WARNING"}, "axes": {"level": "ERROR"}},
}
