"""Local development and the demo (`make run`): debug on unless DEBUG=0, a per-checkout secret key."""

import hashlib
import hmac
import json
import os
import secrets
from urllib.parse import urlsplit, urlunsplit

from .base import *  # noqa: F403
from .base import DATA_DIR, env_bool, env_int


def _local_secret_key() -> str:
    # Generated once per checkout and kept under .data/, so sessions survive a restart.
    path = DATA_DIR / "secret_key"
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def _local_witness_url(webhook_url: str) -> str:
    # Only when the webhook goes to the local receiver; a real platform is not our witness.
    parts = urlsplit(webhook_url)
    if parts.hostname in {"127.0.0.1", "localhost"}:
        return urlunsplit((parts.scheme, parts.netloc, "/witness/checkpoints", "", ""))
    return ""


def _running_peers() -> dict:
    """Where the receiver and SMTP sink of a running `make run` listen: it picks free ports at start (two
    checkouts can run at once) and writes them here, so that manage.py in a second terminal finds them."""
    try:
        return json.loads((DATA_DIR / "run-peers.json").read_text())
    except (OSError, ValueError):
        return {}


_peers = _running_peers()
DEBUG = env_bool("DEBUG", True)
# Even with DEBUG on, visitors get the project's own error pages (core/error_pages.py); DEBUG_TECHNICAL_ERRORS=1
# brings back Django's debug pages (tracebacks, URL patterns) on a developer's own machine.
DEBUG_TECHNICAL_ERRORS = env_bool("DEBUG_TECHNICAL_ERRORS", False)
SECRET_KEY = os.environ.get("SECRET_KEY") or _local_secret_key()
AUDIT_CHECKPOINT_KEY = os.environ.get("AUDIT_CHECKPOINT_KEY") or SECRET_KEY
# The demo's stand-ins for the platform and for a mail server (started by `make run`, see core/stack.py):
# the local enforcement receiver, and an SMTP sink that prints each email.
ENFORCEMENT_WEBHOOK_URL = os.environ.get("ENFORCEMENT_WEBHOOK_URL") or _peers.get(
    "ENFORCEMENT_WEBHOOK_URL", "http://127.0.0.1:8025/enforcement")
ENFORCEMENT_WEBHOOK_SECRET = os.environ.get("ENFORCEMENT_WEBHOOK_SECRET") or hmac.new(
    SECRET_KEY.encode(), b"reviewapp enforcement webhook", hashlib.sha256
).hexdigest()
# The local receiver is also the demo's checkpoint witness (POST and GET /witness/checkpoints).
AUDIT_WITNESS_URL = os.environ.get("AUDIT_WITNESS_URL", _local_witness_url(ENFORCEMENT_WEBHOOK_URL))
AUDIT_WITNESS_SECRET = os.environ.get("AUDIT_WITNESS_SECRET") or ENFORCEMENT_WEBHOOK_SECRET
EMAIL_HOST = os.environ.get("EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = env_int("EMAIL_PORT", int(_peers.get("EMAIL_PORT", 1025)))
WHITENOISE_USE_FINDERS = True
# Static files come straight from the source folders (no collectstatic in development).
STATIC_ROOT = None
# The demo's Forum: a local TAXII 2.1 hub (medallion, started by `make run` on a free port, see core/stack.py)
# with two trust groups, and a demo pseudonymisation key. Never use this key outside the demo and the tests.
FORUM_PSEUDONYM_KEY = os.environ.get("FORUM_PSEUDONYM_KEY") or "demo-forum-key: not a secret, demo and tests only"
FORUM_PSEUDONYM_KEY_ID = os.environ.get("FORUM_PSEUDONYM_KEY_ID") or "demo-2026"
FORUM_TAXII_API_ROOT = os.environ.get("FORUM_TAXII_API_ROOT") or _peers.get(
    "FORUM_TAXII_API_ROOT", "http://127.0.0.1:5555/forum/")
FORUM_TAXII_USER = os.environ.get("FORUM_TAXII_USER") or "reviewapp"
FORUM_TAXII_PASSWORD = os.environ.get("FORUM_TAXII_PASSWORD") or "demo-hub-password"
FORUM_COLLECTIONS = json.loads(os.environ.get("FORUM_COLLECTIONS") or "{}") or {
    "9b1c3c0e-6a57-4f0e-9a51-2f1f4f3f0a01": {"name": "Frontier labs (all Forum members)"},
    "3e7d2a44-1c9b-4b8e-8d6f-5a0b7c2e9d02": {"name": "Safety research core group"},
}
