"""Writes of the outbox: enqueue a message with the change that causes it, deliver it, retry it.

DESIGN.md invariant 7. A message row is written in the caller's transaction (no change without its
message, no message without its change); delivery starts only after that transaction commits; a
periodic reconciler re-queues whatever is still pending and due, so a lost broker message, a killed
worker or a peer that is down means delay, never loss. Each message is delivered under its
idempotency key with content derived only from the stored row, so a redelivery is the same message.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, models, transaction
from django.db.transaction import TransactionManagementError
from django.utils import timezone

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.services import SYSTEM, Target, record

from . import handlers
from .models import OutboxMessage
from .selectors import due_message_ids

logger = logging.getLogger(__name__)

# Messages the reconciler re-queues per run; the rest wait for the next run.
RECONCILE_BATCH = 1000
_LAST_ERROR_CHARS = 2000


class OutboxError(Exception):
    pass


def _target(target: models.Model | Target | None) -> tuple[str, str]:
    # Identifiers, not a foreign key: the same convention as the audit trail.
    if target is None:
        return "", ""
    if isinstance(target, Target):
        return target.type, target.id
    return target._meta.label_lower, str(target.pk)


def _jsonable(payload: dict[str, Any]) -> dict[str, Any]:
    # What jsonb gives back, so the row a worker loads is exactly what the caller handed in.
    return json.loads(json.dumps(payload, cls=DjangoJSONEncoder))


def _queue_delivery(message_id: int) -> None:
    from .tasks import deliver

    deliver.delay(message_id)


def outbox_enqueue(
    *,
    kind: str,
    payload: dict[str, Any],
    idempotency_key: str,
    target: models.Model | Target | None = None,
) -> OutboxMessage:
    """Write an external effect in the caller's transaction; deliver it once that transaction commits.

    Must be called inside the ``transaction.atomic`` of the change it belongs to. The same
    ``idempotency_key`` twice returns the first message unchanged (a different payload under a used
    key is logged and ignored, never sent), so a retried caller cannot send two different messages.
    Raises ``handlers.UnknownKind`` for a kind nobody delivers and ``ValueError`` for a payload its
    kind refuses.
    """
    if not transaction.get_connection().in_atomic_block:
        raise TransactionManagementError("outbox_enqueue must run inside the transaction of the change it belongs to")
    handler = handlers.handler_for(kind)
    if not isinstance(payload, dict):
        raise ValueError("an outbox payload is a JSON object")
    if not idempotency_key or len(idempotency_key) > OutboxMessage._meta.get_field("idempotency_key").max_length:
        raise ValueError("an idempotency key is 1 to 200 characters")
    payload = _jsonable(payload)
    if handler.validate:
        handler.validate(payload)
    target_type, target_id = _target(target)

    existing = OutboxMessage.objects.filter(idempotency_key=idempotency_key).first()
    if existing is None:
        try:
            with transaction.atomic():  # a savepoint: losing a race must not abort the caller's transaction
                message = OutboxMessage.objects.create(
                    kind=kind, payload=payload, idempotency_key=idempotency_key,
                    target_type=target_type, target_id=target_id,
                )
        except IntegrityError:  # a concurrent transaction committed the same key first
            existing = OutboxMessage.objects.get(idempotency_key=idempotency_key)
        else:
            transaction.on_commit(partial(_queue_delivery, message.pk), robust=True)
            return message
    if (existing.kind, existing.payload, existing.target_type, existing.target_id) != (
        kind, payload, target_type, target_id
    ):
        logger.warning("outbox: idempotency key %r reused with different content; message %s is kept unchanged",
                       idempotency_key, existing.pk)
    return existing


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff after the ``attempts``-th failed try: base, 2×base, 4×base, … at most
    OUTBOX_RETRY_MAX_SECONDS (however large the base, a pending message is tried at least that often). The
    exponent stops at 40: past it every delay is the cap, and 2ⁿ seconds would overflow a timedelta (which failed
    the try's bookkeeping, so a message under a large OUTBOX_MAX_ATTEMPTS was retried without back-off)."""
    doubled = settings.OUTBOX_RETRY_BASE_SECONDS * 2 ** min(max(attempts - 1, 0), 40)
    return timedelta(seconds=min(doubled, settings.OUTBOX_RETRY_MAX_SECONDS))


def _audit_data(message: OutboxMessage) -> dict[str, Any]:
    return {"kind": message.kind, "idempotency_key": message.idempotency_key, "attempts": message.attempts,
            "target_type": message.target_type, "target_id": message.target_id}


def _describe(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, handlers.DeliveryError) else f"{type(exc).__name__}: {exc}"
    return text[:_LAST_ERROR_CHARS]


def outbox_deliver(*, message_id: int) -> OutboxMessage | None:
    """Try to deliver one message once; return it, or None when there was nothing to do.

    The row is locked (``FOR UPDATE SKIP LOCKED``) for the whole try, so two workers never deliver
    the same message at once, and a delivered, given-up or not-yet-due message is left alone (a
    duplicate task is harmless). Success marks it delivered; failure counts the attempt and schedules
    the next one with exponential backoff, or gives up after OUTBOX_MAX_ATTEMPTS. One audit event
    when it is delivered and one when it is given up, not one per attempt. A worker killed during the
    try rolls back: the message stays pending, and the peer sees the same idempotency key again.
    """
    with transaction.atomic():
        message = (
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(pk=message_id, state=OutboxMessage.State.PENDING, next_attempt_at__lte=timezone.now())
            .first()
        )
        if message is None:
            return None
        try:
            with transaction.atomic():  # a savepoint: a handler's database error must not poison ours
                handlers.handler_for(message.kind).deliver(message)
        except Exception as exc:
            _record_failure(message, exc)
        else:
            _record_delivery(message)
        return message


def _record_delivery(message: OutboxMessage) -> None:
    message.attempts += 1
    message.state = OutboxMessage.State.DELIVERED
    message.delivered_at = timezone.now()
    message.next_attempt_at = None
    message.save(update_fields=["attempts", "state", "delivered_at", "next_attempt_at"])
    record(actor=SYSTEM, action=AuditAction.OUTBOX_DELIVERED, target=message, data=_audit_data(message))


def _record_failure(message: OutboxMessage, exc: BaseException) -> None:
    message.attempts += 1
    message.last_error = _describe(exc)
    if message.attempts >= settings.OUTBOX_MAX_ATTEMPTS:
        message.state = OutboxMessage.State.FAILED
        message.next_attempt_at = None
        logger.error("outbox: gave up on message %s (%s) after %s attempts: %s",
                     message.pk, message.kind, message.attempts, message.last_error)
        record(actor=SYSTEM, action=AuditAction.OUTBOX_FAILED, target=message,
               data={**_audit_data(message), "last_error": message.last_error})
    else:
        message.next_attempt_at = timezone.now() + retry_delay(message.attempts)
        logger.warning("outbox: message %s (%s) attempt %s failed, next try at %s: %s",
                       message.pk, message.kind, message.attempts, message.next_attempt_at, message.last_error)
    message.save(update_fields=["attempts", "last_error", "state", "next_attempt_at"])


def outbox_requeue_due(*, limit: int = RECONCILE_BATCH) -> int:
    """Queue a delivery for every pending message whose next try is due; return how many.

    Run by Celery beat every OUTBOX_RECONCILE_INTERVAL_SECONDS. This, not the broker, guarantees
    delivery: it also re-queues a message whose first task was lost (broker down at commit, worker
    killed, Redis waiting out its visibility timeout). A message that still has a task in the queue
    may get a second one; ``outbox_deliver`` makes that a no-op.
    """
    ids = due_message_ids(limit=limit)
    for message_id in ids:
        _queue_delivery(message_id)
    return len(ids)


@transaction.atomic
def outbox_retry(*, message: OutboxMessage, actor) -> OutboxMessage:
    """Put a given-up (or waiting) message back to pending with a fresh set of attempts, due now.

    For an admin or a service once the peer is fixed. A delivered message is never sent again.
    """
    message = OutboxMessage.objects.select_for_update().get(pk=message.pk)
    if message.state == OutboxMessage.State.DELIVERED:
        raise OutboxError(f"message {message.pk} was delivered at {message.delivered_at:%Y-%m-%d %H:%M:%S} UTC")
    before = {"state": message.state, "attempts": message.attempts, "last_error": message.last_error}
    message.state = OutboxMessage.State.PENDING
    message.attempts = 0
    message.next_attempt_at = timezone.now()
    message.save(update_fields=["state", "attempts", "next_attempt_at"])
    record(actor=actor, action=AuditAction.OUTBOX_RETRIED, target=message,
           data={**_audit_data(message), "before": before})
    transaction.on_commit(partial(_queue_delivery, message.pk), robust=True)
    return message
