"""Production: refuses to start without SECRET_KEY; HTTPS-only cookies, HSTS; `check --deploy` is clean."""

import os

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import env_bool, env_int

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if len(SECRET_KEY) < 50:
    raise ImproperlyConfigured(
        "SECRET_KEY must be set in the environment (at least 50 random characters) for production settings"
    )
AUDIT_CHECKPOINT_KEY = os.environ.get("AUDIT_CHECKPOINT_KEY") or SECRET_KEY
ENFORCEMENT_WEBHOOK_SECRET = os.environ.get("ENFORCEMENT_WEBHOOK_SECRET", "")
if os.environ.get("ENFORCEMENT_WEBHOOK_URL") and len(ENFORCEMENT_WEBHOOK_SECRET) < 32:
    raise ImproperlyConfigured(
        "ENFORCEMENT_WEBHOOK_SECRET must be set in the environment (at least 32 random characters, shared with "
        "the platform) when ENFORCEMENT_WEBHOOK_URL is set"
    )
AUDIT_WITNESS_SECRET = os.environ.get("AUDIT_WITNESS_SECRET", "")
if os.environ.get("AUDIT_WITNESS_URL") and len(AUDIT_WITNESS_SECRET) < 32:
    raise ImproperlyConfigured(
        "AUDIT_WITNESS_SECRET must be set in the environment (at least 32 random characters, shared with the "
        "witness) when AUDIT_WITNESS_URL is set"
    )
DEBUG = False

SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe over plain HTTP
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
