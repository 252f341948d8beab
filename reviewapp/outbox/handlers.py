"""What delivering a message of each kind means. One registry; delivery code never names a kind.

A handler takes the ``OutboxMessage`` and returns when the peer has accepted it; raising anything
means "not delivered, try again later" (``DeliveryError`` for the expected failures, with a message
the staff page shows). Handlers must be safe to call again for the same message: the peer may have
applied a message whose acknowledgement was lost, so what they send depends only on the stored row
and carries its idempotency key.

Add a kind from another app in its own ``outbox_handlers`` module (found by ``OutboxConfig.ready``):

    @register("taxii", validate=check_bundle)
    def push_bundle(message): ...
"""

from __future__ import annotations

import hashlib
import http.client
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parseaddr
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMultiAlternatives

from . import signing

if TYPE_CHECKING:
    from .models import OutboxMessage

# A peer that has not answered by then is treated as down; the delivery is retried with backoff.
WEBHOOK_TIMEOUT_SECONDS = 10
USER_AGENT = "reviewapp-outbox/1"


class DeliveryError(Exception):
    """The peer did not accept the message (it is down, refused it, or answered with an error)."""


class UnknownKind(LookupError):
    pass


@dataclass(frozen=True)
class Handler:
    kind: str
    deliver: Callable[[OutboxMessage], None]
    # Checks a payload at enqueue time (raises ValueError), so a malformed message fails in the
    # caller's transaction instead of being retried for hours.
    validate: Callable[[dict[str, Any]], None] | None = None


REGISTRY: dict[str, Handler] = {}


def register(kind: str, *, validate: Callable[[dict[str, Any]], None] | None = None):
    def decorator(deliver: Callable[[OutboxMessage], None]):
        existing = REGISTRY.get(kind)
        if existing is not None and existing.deliver is not deliver:
            raise ImproperlyConfigured(f"outbox kind {kind!r} is registered twice")
        REGISTRY[kind] = Handler(kind=kind, deliver=deliver, validate=validate)
        return deliver

    return decorator


def handler_for(kind: str) -> Handler:
    try:
        return REGISTRY[kind]
    except KeyError:
        raise UnknownKind(f"no outbox handler for kind {kind!r} (known: {', '.join(sorted(REGISTRY))})") from None


# --- enforcement: a signed webhook to the platform -------------------------------------------------

class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    # A 3xx is not an acceptance, and urllib would follow it by turning the POST into a bodiless GET.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_RefuseRedirects)


def webhook_request(message: OutboxMessage, *, url: str, secret: str, timestamp: int | None = None):
    """The HTTP request for one enforcement message (see ``signing`` for the scheme)."""
    if urlsplit(url).scheme not in {"http", "https"}:
        raise DeliveryError(f"ENFORCEMENT_WEBHOOK_URL must be http(s), not {url!r}")
    body = signing.webhook_body(message.payload)
    timestamp = int(time.time()) if timestamp is None else timestamp
    event = message.payload.get("event") or message.kind
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Idempotency-Key": message.idempotency_key,
        "X-Reviewapp-Event": str(event),
        "X-Reviewapp-Timestamp": str(timestamp),
        "X-Reviewapp-Signature": signing.sign(
            secret=secret, timestamp=timestamp, idempotency_key=message.idempotency_key, body=body
        ),
    }
    return urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 — scheme checked


def _validate_enforcement(payload: dict[str, Any]) -> None:
    signing.webhook_body(payload)  # raises ValueError on what canonical JSON cannot carry (NaN, huge ints)


@register("enforcement", validate=_validate_enforcement)
def deliver_enforcement(message: OutboxMessage) -> None:
    """POST the payload to ENFORCEMENT_WEBHOOK_URL; only a 2xx answer counts as delivered."""
    url, secret = settings.ENFORCEMENT_WEBHOOK_URL, settings.ENFORCEMENT_WEBHOOK_SECRET
    if not url:
        raise DeliveryError("ENFORCEMENT_WEBHOOK_URL is not set")
    if not secret:
        raise DeliveryError("ENFORCEMENT_WEBHOOK_SECRET is not set")
    _post(webhook_request(message, url=url, secret=secret), url=url)


def _post(request: urllib.request.Request, *, url: str) -> None:
    try:
        with _OPENER.open(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        detail = exc.read(500).decode("utf-8", "replace").strip()
        raise DeliveryError(f"HTTP {exc.code} from {url}" + (f": {detail}" if detail else "")) from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise DeliveryError(f"could not reach {url}: {getattr(exc, 'reason', None) or exc}") from exc
    if not 200 <= status < 300:
        raise DeliveryError(f"HTTP {status} from {url}")


# --- witness: a copy of each signed audit checkpoint, to a witness outside this deployment ----------
# The same wire format and signature as the enforcement webhook (``signing``), keyed with
# AUDIT_WITNESS_SECRET. The witness keeps what it receives and serves it back on GET (see
# ``reviewapp.audit.checkpoints``), so a rewrite of the database *and* of the local checkpoint file is
# still caught.

_WITNESS_FIELDS = {"seq", "hash", "at", "signature", "key_id"}


def _validate_witness(payload: dict[str, Any]) -> None:
    if set(payload) != _WITNESS_FIELDS:
        raise ValueError(f"witness payload: fields must be {sorted(_WITNESS_FIELDS)}")
    if type(payload["seq"]) is not int or payload["seq"] < 1:
        raise ValueError("witness payload: 'seq' must be a positive integer")
    if not all(isinstance(payload[name], str) and payload[name] for name in ("hash", "at", "signature")):
        raise ValueError("witness payload: 'hash', 'at' and 'signature' must be non-empty strings")


@register("witness", validate=_validate_witness)
def deliver_witness_checkpoint(message: OutboxMessage) -> None:
    """POST the checkpoint to AUDIT_WITNESS_URL; only a 2xx answer counts as delivered."""
    url, secret = settings.AUDIT_WITNESS_URL, settings.AUDIT_WITNESS_SECRET
    if not url:
        raise DeliveryError("AUDIT_WITNESS_URL is not set")
    if not secret:
        raise DeliveryError("AUDIT_WITNESS_SECRET is not set")
    if urlsplit(url).scheme not in {"http", "https"}:
        raise DeliveryError(f"AUDIT_WITNESS_URL must be http(s), not {url!r}")
    _post(webhook_request(message, url=url, secret=secret), url=url)


# --- email: through Django's email backend (SMTP in production) -------------------------------------

_EMAIL_FIELDS = {"to", "subject", "body", "html"}


def _validate_email(payload: dict[str, Any]) -> None:
    unknown = set(payload) - _EMAIL_FIELDS
    if unknown:
        raise ValueError(f"email payload: unknown fields {sorted(unknown)}")
    to = payload.get("to")
    if not isinstance(to, list) or not to or not all(isinstance(a, str) and "@" in a for a in to):
        raise ValueError("email payload: 'to' must be a non-empty list of addresses")
    subject = payload.get("subject")
    if not isinstance(subject, str) or not subject.strip() or "\n" in subject or "\r" in subject:
        raise ValueError("email payload: 'subject' must be one non-empty line")
    if not isinstance(payload.get("body"), str):
        raise ValueError("email payload: 'body' must be a string")
    if "html" in payload and not isinstance(payload["html"], str):
        raise ValueError("email payload: 'html' must be a string")


def email_message_id(idempotency_key: str) -> str:
    """The same Message-ID on every retry, so a mail system can drop a duplicate of a resent email."""
    domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "reviewapp.invalid"
    return f"<outbox-{hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]}@{domain}>"


@register("email", validate=_validate_email)
def deliver_email(message: OutboxMessage) -> None:
    payload = message.payload
    email = EmailMultiAlternatives(
        subject=payload["subject"],
        body=payload["body"],
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=payload["to"],
        headers={"Message-ID": email_message_id(message.idempotency_key),
                 "X-Reviewapp-Idempotency-Key": message.idempotency_key},
    )
    if payload.get("html"):
        email.attach_alternative(payload["html"], "text/html")
    try:
        sent = email.send(fail_silently=False)
    except OSError as exc:  # smtplib's errors are OSErrors, as are refused connections and timeouts
        raise DeliveryError(f"could not send email through {settings.EMAIL_HOST}:{settings.EMAIL_PORT}: {exc}") from exc
    if sent != 1:
        raise DeliveryError("the email backend sent nothing")
