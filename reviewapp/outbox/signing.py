"""The enforcement webhook's wire format: the exact body bytes and their signature.

Shared by the sender (``handlers``) and the local receiver, and the one place a platform engineer
reads to verify our requests:

    body       = the payload as RFC 8785 canonical JSON (UTF-8), so every retry sends the same bytes
    signed     = "<X-Reviewapp-Timestamp>" + "." + "<Idempotency-Key>" + "." + body
    signature  = "sha256=" + hex(HMAC-SHA256(ENFORCEMENT_WEBHOOK_SECRET, signed))

The timestamp (Unix seconds) lets the receiver refuse a captured request replayed later; signing the
idempotency key stops a replay under a fresh key from being applied a second time.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from reviewapp.audit.chain import canonical_json

SIGNATURE_PREFIX = "sha256="
# How far a request's timestamp may be from the receiver's clock.
DEFAULT_TOLERANCE_SECONDS = 300


def webhook_body(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent: the same payload always gives the same bytes, whatever its key order."""
    return canonical_json(payload)  # byte for byte rfc8785.dumps, by json's C encoder where it can


def sign(*, secret: str, timestamp: int | str, idempotency_key: str, body: bytes) -> str:
    signed = f"{timestamp}.{idempotency_key}.".encode() + body
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def verify(
    *,
    secret: str,
    signature: str,
    timestamp: str,
    idempotency_key: str,
    body: bytes,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> str:
    """Return "" when the request is authentic and fresh, else the reason it is not."""
    if not signature or not timestamp:
        return "missing signature or timestamp"
    try:
        sent_at = int(timestamp)
    except ValueError:
        return "malformed timestamp"
    if abs((time.time() if now is None else now) - sent_at) > tolerance:
        return "timestamp outside the tolerance"
    expected = sign(secret=secret, timestamp=timestamp, idempotency_key=idempotency_key, body=body)
    if not hmac.compare_digest(expected, signature):
        return "signature does not match"
    return ""
