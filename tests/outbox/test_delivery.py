"""Delivery by a real Celery worker to real peers: the enforcement receiver and an SMTP server.

The worker posts to ``celery_worker.enforcement_port`` and mails to ``celery_worker.smtp_port``, retries after
1 s, 2 s, … and gives up after OUTBOX_MAX_ATTEMPTS=3 (tests/conftest.py). There is no beat here: a test runs
the reconciler itself, through the broker, as beat does every OUTBOX_RECONCILE_INTERVAL_SECONDS.
"""

import email
import email.policy
import hashlib
import threading
from http import HTTPStatus

import pytest
from django.db import transaction

from reviewapp.audit.models import AuditEvent
from reviewapp.audit.selectors import chain_verify
from reviewapp.outbox.handlers import email_message_id
from reviewapp.outbox.models import OutboxMessage
from reviewapp.outbox.receiver import EnforcementReceiver
from reviewapp.outbox.services import outbox_enqueue, outbox_retry
from reviewapp.outbox.signing import webhook_body
from reviewapp.outbox.tasks import deliver, reconcile_outbox
from reviewapp.people.roles import Role
from tests.support import wait_for

from .conftest import applied

pytestmark = [pytest.mark.worker, pytest.mark.xdist_group("worker"), pytest.mark.django_db(transaction=True)]


def _payload(n: int = 1) -> dict:
    return {"event": "enforcement.apply", "decision_id": n, "account_id": f"acct_{n}", "action": "suspend",
            "duration_days": 30, "ends_at": "2027-01-31T00:00:00Z"}


def _enqueue(key: str, payload: dict | None = None, kind: str = "enforcement") -> OutboxMessage:
    with transaction.atomic():  # the caller's transaction: delivery is queued when it commits
        return outbox_enqueue(kind=kind, payload=payload or _payload(), idempotency_key=key)


def _reload(message: OutboxMessage) -> OutboxMessage:
    message.refresh_from_db()
    return message


def _reconcile_until(predicate, *, what: str, timeout: float = 60):
    """Run the reconciler the way beat does (a task on the broker) until predicate() holds."""
    def step():
        reconcile_outbox.delay()
        return predicate()

    return wait_for(step, timeout=timeout, interval=0.5, what=what)


def _drain(key: str) -> None:
    """Wait until the worker has worked through everything queued so far (its queue is first in, first out)."""
    marker = _enqueue(key, _payload(999))
    wait_for(lambda: _reload(marker).state == "delivered", timeout=30, what="the marker message to be delivered")


def _lockable(message: OutboxMessage) -> bool:
    with transaction.atomic():
        return OutboxMessage.objects.select_for_update(skip_locked=True).filter(pk=message.pk).exists()


def _events(action: str, message: OutboxMessage) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, target_type="outbox.outboxmessage",
                                          target_id=str(message.pk)))


def test_an_enforcement_is_delivered_signed_once_and_audited(celery_worker, start_receiver):
    receiver = start_receiver(port=celery_worker.enforcement_port)
    message = _enqueue("decision-1-apply")

    wait_for(lambda: _reload(message).state == "delivered", timeout=30, what="the webhook to be delivered")

    # The receiver verified the signature with the shared secret, or it would have answered 401.
    [entry] = applied(receiver.log_path)
    assert entry["idempotency_key"] == "decision-1-apply" and entry["event"] == "enforcement.apply"
    assert entry["payload"] == _payload()
    assert entry["body_sha256"] == hashlib.sha256(webhook_body(_payload())).hexdigest()
    assert (message.attempts, message.last_error, message.next_attempt_at) == (1, "", None)
    assert message.delivered_at is not None
    [event] = _events("outbox.delivered", message)
    assert event.actor_type == "system" and event.data["idempotency_key"] == "decision-1-apply"
    assert chain_verify().ok


def test_a_wrong_signature_is_refused_and_retried_never_marked_delivered(celery_worker, start_receiver):
    impostor = start_receiver(port=celery_worker.enforcement_port, secret="a-secret-the-platform-got-wrong")
    message = _enqueue("decision-2-apply")

    wait_for(lambda: _reload(message).attempts >= 1, timeout=30, what="the first attempt")
    assert message.state == "pending"
    assert "HTTP 401" in message.last_error and "signature does not match" in message.last_error
    assert message.next_attempt_at > message.created_at
    assert applied(impostor.log_path) == [] and _events("outbox.delivered", message) == []

    impostor.stop()  # the platform fixes its secret; the next retry goes through
    receiver = start_receiver(port=celery_worker.enforcement_port, log_path=impostor.log_path)
    _reconcile_until(lambda: _reload(message).state == "delivered", what="the retry to be delivered")
    assert message.attempts == 2
    assert [entry["idempotency_key"] for entry in applied(receiver.log_path)] == ["decision-2-apply"]


def test_platform_down_then_up_loses_nothing_and_applies_once(celery_worker, start_receiver, tmp_path):
    message = _enqueue("decision-3-apply")  # nothing listens on the port yet

    wait_for(lambda: _reload(message).attempts >= 1, timeout=30, what="the first attempt")
    assert message.state == "pending" and "could not reach" in message.last_error

    receiver = start_receiver(port=celery_worker.enforcement_port)
    _reconcile_until(lambda: _reload(message).state == "delivered", what="delivery once the platform is up")

    # Stray duplicates (a second reconciler run, a redelivered task) change nothing.
    deliver.delay(message.pk)
    reconcile_outbox.delay()
    _drain("marker-3")
    keys = [entry["idempotency_key"] for entry in applied(receiver.log_path)]
    assert keys.count("decision-3-apply") == 1
    assert len(_events("outbox.delivered", message)) == 1 and _reload(message).attempts == 2


class _LosesTheFirstAnswer(EnforcementReceiver):
    """Applies the action, then fails to say so (as if the connection dropped after the work was done)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.answered: set[str] = set()

    def apply(self, *, idempotency_key, event, body):
        status = super().apply(idempotency_key=idempotency_key, event=event, body=body)
        if idempotency_key not in self.answered:
            self.answered.add(idempotency_key)
            return HTTPStatus.SERVICE_UNAVAILABLE
        return status


class _HoldsTheFirstAnswer(EnforcementReceiver):
    """Applies the action, then keeps the sender waiting for its answer until released."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.applied_once, self.release = threading.Event(), threading.Event()

    def apply(self, *, idempotency_key, event, body):
        status = super().apply(idempotency_key=idempotency_key, event=event, body=body)
        if not self.applied_once.is_set():
            self.applied_once.set()
            self.release.wait(20)
        return status


def test_an_applied_action_whose_answer_was_lost_is_redelivered_and_not_applied_twice(celery_worker, start_receiver):
    receiver = start_receiver(port=celery_worker.enforcement_port, cls=_LosesTheFirstAnswer)
    message = _enqueue("decision-4-apply")

    wait_for(lambda: _reload(message).attempts >= 1, timeout=30, what="the first attempt")
    assert message.state == "pending" and "HTTP 503" in message.last_error
    _reconcile_until(lambda: _reload(message).state == "delivered", what="the redelivery")
    assert [entry["idempotency_key"] for entry in applied(receiver.log_path)] == ["decision-4-apply"]
    assert "already applied key decision-4-apply" in receiver.out.getvalue()


def test_a_worker_killed_mid_delivery_loses_nothing_and_the_platform_applies_once(celery_worker, start_receiver):
    receiver = start_receiver(port=celery_worker.enforcement_port, cls=_HoldsTheFirstAnswer)
    message = _enqueue("decision-8-apply")

    assert receiver.applied_once.wait(30), "the worker never reached the platform"
    celery_worker.kill()  # SIGKILL while it waits for the answer: its transaction and its task die with it
    receiver.release.set()
    try:
        wait_for(lambda: _lockable(message), timeout=30, what="the dead worker's transaction to be rolled back")
        assert (_reload(message).state, message.attempts) == ("pending", 0)
    finally:
        celery_worker.start()
    _reconcile_until(lambda: _reload(message).state == "delivered", what="delivery after the restart")
    assert [entry["idempotency_key"] for entry in applied(receiver.log_path)] == ["decision-8-apply"]
    assert "already applied key decision-8-apply" in receiver.out.getvalue()
    assert message.attempts == 1 and len(_events("outbox.delivered", message)) == 1


def test_gives_up_after_max_attempts_then_an_admin_retries(celery_worker, start_receiver, make_staff):
    max_attempts = int(celery_worker.env["OUTBOX_MAX_ATTEMPTS"])
    message = _enqueue("decision-5-apply")  # the platform stays down

    _reconcile_until(lambda: _reload(message).state == "failed", what="the message to be given up")
    assert message.attempts == max_attempts and message.next_attempt_at is None
    assert "could not reach" in message.last_error
    [failed] = _events("outbox.failed", message)
    assert failed.data["attempts"] == max_attempts and _events("outbox.delivered", message) == []

    receiver = start_receiver(port=celery_worker.enforcement_port)
    outbox_retry(message=message, actor=make_staff(Role.ADMIN))
    wait_for(lambda: _reload(message).state == "delivered", timeout=30, what="the retried message to be delivered")
    assert [entry["idempotency_key"] for entry in applied(receiver.log_path)] == ["decision-5-apply"]
    assert len(_events("outbox.failed", message)) == 1 and len(_events("outbox.retried", message)) == 1


def test_the_reconciler_delivers_a_message_whose_task_was_lost(celery_worker, start_receiver):
    receiver = start_receiver(port=celery_worker.enforcement_port)
    # The row committed but its task never reached the broker (broker down at commit, message lost).
    lost = OutboxMessage.objects.create(kind="enforcement", payload=_payload(6), idempotency_key="decision-6-apply")

    _drain("marker-6")
    assert _reload(lost).state == "pending", "nothing but the reconciler knows about this message"

    reconcile_outbox.delay()
    wait_for(lambda: _reload(lost).state == "delivered", timeout=30, what="the reconciler to deliver it")
    assert [entry["idempotency_key"] for entry in applied(receiver.log_path)].count("decision-6-apply") == 1


def test_an_email_is_sent_through_a_real_smtp_server(celery_worker, smtp_server):
    payload = {
        "to": ["holder@example.org"],
        "subject": "Your API access: statement of reasons (decision 7)",
        "body": "We suspended your API access for 30 days.\nGrundlage: Nutzungsrichtlinie UP-4.2 — Extraktion.\n",
        "html": "<p>We suspended your API access for <strong>30 days</strong>.</p>",
    }
    message = _enqueue("decision-7-notice", payload, kind="email")

    wait_for(lambda: _reload(message).state == "delivered", timeout=30, what="the email to be sent")
    [envelope] = smtp_server.envelopes
    assert envelope.rcpt_tos == ["holder@example.org"]
    assert envelope.mail_from == "trust-safety@reviewapp.invalid"
    mail = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
    assert mail["Subject"] == payload["subject"] and mail["To"] == "holder@example.org"
    assert mail["Message-ID"].strip() == email_message_id("decision-7-notice")  # the same on every retry
    text = mail.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert text == payload["body"]
    assert mail.get_body(("html",)).get_content().strip() == payload["html"]
    assert len(_events("outbox.delivered", message)) == 1
