"""Enqueueing in the caller's transaction, idempotency keys, and one delivery try (in this process)."""

import threading
from datetime import date, timedelta

import pytest
from django.db import connection, transaction
from django.db.transaction import TransactionManagementError
from django.test import override_settings
from django.utils import timezone

from reviewapp.audit.models import AuditEvent
from reviewapp.outbox import handlers, services
from reviewapp.outbox.handlers import DeliveryError, Handler, UnknownKind
from reviewapp.outbox.models import OutboxMessage
from reviewapp.outbox.services import (
    OutboxError,
    outbox_deliver,
    outbox_enqueue,
    outbox_requeue_due,
    outbox_retry,
    retry_delay,
)
from reviewapp.people.roles import Role

pytestmark = pytest.mark.django_db
Pending, Delivered, Failed = OutboxMessage.State.PENDING, OutboxMessage.State.DELIVERED, OutboxMessage.State.FAILED


@pytest.fixture
def queued(monkeypatch) -> list[int]:
    """Message ids whose delivery would have been sent to the broker (after a commit)."""
    ids: list[int] = []
    monkeypatch.setattr(services, "_queue_delivery", ids.append)
    return ids


@pytest.fixture
def test_kind(monkeypatch):
    """A registered kind whose peer is a list: answers are popped from ``outcomes`` (an exception or None)."""
    peer = {"received": [], "outcomes": []}

    def deliver(message):
        peer["received"].append(message.idempotency_key)
        outcome = peer["outcomes"].pop(0) if peer["outcomes"] else None
        if outcome is not None:
            raise outcome

    monkeypatch.setitem(handlers.REGISTRY, "test", Handler(kind="test", deliver=deliver))
    return peer


def _enqueue(key="k-1", payload=None, kind="enforcement", **extra):
    with transaction.atomic():
        return outbox_enqueue(kind=kind, payload=payload or {"event": "enforcement.apply", "account_id": "acct_1"},
                              idempotency_key=key, **extra)


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_change_leaves_no_message_and_sends_nothing(queued):
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox_enqueue(kind="enforcement", payload={"account_id": "acct_1"}, idempotency_key="k-1")
        raise RuntimeError("the decision failed after its message was written")
    assert not OutboxMessage.objects.exists()
    assert queued == []

    message = _enqueue()
    assert queued == [message.pk]  # delivery is queued only once the transaction has committed


@pytest.mark.django_db(transaction=True)
def test_enqueue_outside_a_transaction_is_refused():
    with pytest.raises(TransactionManagementError):
        outbox_enqueue(kind="enforcement", payload={}, idempotency_key="k-1")
    assert not OutboxMessage.objects.exists()


def test_the_same_key_twice_is_one_message_with_the_first_content(django_capture_on_commit_callbacks, caplog):
    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        first = outbox_enqueue(kind="enforcement", payload={"action": "suspend"}, idempotency_key="decision-1")
        again = outbox_enqueue(kind="enforcement", payload={"action": "suspend"}, idempotency_key="decision-1")
        other = outbox_enqueue(kind="enforcement", payload={"action": "terminate"}, idempotency_key="decision-1")
    later = _enqueue(key="decision-1", payload={"action": "warn"})  # a retried caller, another transaction

    assert first.pk == again.pk == other.pk == later.pk
    assert OutboxMessage.objects.count() == 1
    assert OutboxMessage.objects.get().payload == {"action": "suspend"}
    assert len(callbacks) == 1
    assert "reused with different content" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_concurrent_enqueues_of_one_key_make_one_message(queued):
    """The loser of the race waits for the winner's commit, then gets its row; its own transaction goes on."""
    first_written, results, errors = threading.Event(), {}, []

    def winner():
        try:
            with transaction.atomic():
                results["winner"] = outbox_enqueue(kind="enforcement", payload={"n": 1}, idempotency_key="race")
                first_written.set()
                threading.Event().wait(0.5)  # hold the uncommitted row while the other inserts
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            first_written.set()
            connection.close()

    thread = threading.Thread(target=winner)
    thread.start()
    first_written.wait(10)
    with transaction.atomic():
        loser = outbox_enqueue(kind="enforcement", payload={"n": 2}, idempotency_key="race")
        OutboxMessage.objects.count()  # the caller's transaction is still usable
    thread.join(10)
    assert not errors
    assert loser.pk == results["winner"].pk and loser.payload == {"n": 1}
    assert OutboxMessage.objects.count() == 1 and queued == [loser.pk]


def test_target_and_payload_are_stored_as_the_audit_trail_stores_them(make_staff):
    holder_contact = make_staff(Role.ADMIN)
    message = _enqueue(payload={"account_id": "acct_1", "ends_on": date(2027, 1, 31), "scope": ("api", "web")},
                       target=holder_contact)
    message.refresh_from_db()
    assert (message.target_type, message.target_id) == ("people.user", str(holder_contact.pk))
    assert message.payload == {"account_id": "acct_1", "ends_on": "2027-01-31", "scope": ["api", "web"]}
    assert (message.state, message.attempts, message.delivered_at) == (Pending, 0, None)


def test_unknown_kinds_and_malformed_emails_fail_in_the_callers_transaction():
    with pytest.raises(UnknownKind, match="taxii"):
        _enqueue(kind="taxii")
    for payload in ({"to": [], "subject": "s", "body": "b"},
                    {"to": ["holder@example.org"], "subject": "two\nlines", "body": "b"},
                    {"to": ["holder@example.org"], "subject": "s"},
                    {"to": ["holder@example.org"], "subject": "s", "body": "b", "bcc": ["x@example.org"]}):
        with pytest.raises(ValueError, match="email payload"):
            _enqueue(kind="email", payload=payload)
    assert not OutboxMessage.objects.exists()


@override_settings(OUTBOX_RETRY_BASE_SECONDS=10, OUTBOX_MAX_ATTEMPTS=3)
def test_failures_back_off_exponentially_then_give_up_with_one_audit_event(test_kind):
    test_kind["outcomes"] = [DeliveryError("HTTP 503 from peer"), DeliveryError("HTTP 503 from peer"),
                             ConnectionResetError("peer hung up")]
    message = _enqueue(kind="test", key="t-1")
    start = timezone.now()

    assert outbox_deliver(message_id=message.pk).state == Pending
    message.refresh_from_db()
    assert message.attempts == 1 and message.last_error == "HTTP 503 from peer"
    assert start + timedelta(seconds=10) <= message.next_attempt_at <= timezone.now() + timedelta(seconds=10)
    assert outbox_deliver(message_id=message.pk) is None  # not due yet: a duplicate task does nothing
    assert outbox_requeue_due() == 0

    OutboxMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
    outbox_deliver(message_id=message.pk)
    message.refresh_from_db()
    assert message.attempts == 2 and message.next_attempt_at >= timezone.now() + timedelta(seconds=19)

    OutboxMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
    assert outbox_deliver(message_id=message.pk).state == Failed
    message.refresh_from_db()
    assert (message.attempts, message.next_attempt_at) == (3, None)
    assert message.last_error == "ConnectionResetError: peer hung up"
    assert test_kind["received"] == ["t-1"] * 3
    failed = AuditEvent.objects.filter(action="outbox.failed")
    assert [(e.target_type, e.target_id) for e in failed] == [("outbox.outboxmessage", str(message.pk))]
    assert failed.get().data["attempts"] == 3 and failed.get().data["last_error"] == message.last_error
    assert outbox_requeue_due() == 0 and outbox_deliver(message_id=message.pk) is None


def test_a_delivered_message_is_never_delivered_again(test_kind):
    message = _enqueue(kind="test", key="t-1")
    assert outbox_deliver(message_id=message.pk).state == Delivered
    assert outbox_deliver(message_id=message.pk) is None
    message.refresh_from_db()
    assert message.attempts == 1 and message.delivered_at and message.next_attempt_at is None
    assert test_kind["received"] == ["t-1"]
    assert AuditEvent.objects.filter(action="outbox.delivered", target_id=str(message.pk)).count() == 1
    with pytest.raises(OutboxError, match="was delivered"):
        outbox_retry(message=message, actor=None)


@pytest.mark.django_db(transaction=True)
def test_a_message_another_worker_holds_is_skipped(test_kind, queued):
    message = _enqueue(kind="test", key="t-1")
    locked, release = threading.Event(), threading.Event()

    def other_worker():
        with transaction.atomic():
            OutboxMessage.objects.select_for_update().get(pk=message.pk)
            locked.set()
            release.wait(10)
        connection.close()

    thread = threading.Thread(target=other_worker)
    thread.start()
    try:
        assert locked.wait(10)
        assert outbox_deliver(message_id=message.pk) is None
        assert test_kind["received"] == []
    finally:
        release.set()
        thread.join(10)


@override_settings(OUTBOX_MAX_ATTEMPTS=1)
def test_an_admin_retries_a_failed_message_with_fresh_attempts(test_kind, make_staff,
                                                                django_capture_on_commit_callbacks):
    test_kind["outcomes"] = [DeliveryError("down")]
    message = _enqueue(kind="test", key="t-1")
    assert outbox_deliver(message_id=message.pk).state == Failed

    admin = make_staff(Role.ADMIN)
    with django_capture_on_commit_callbacks() as callbacks:
        retried = outbox_retry(message=message, actor=admin)
    assert (retried.state, retried.attempts) == (Pending, 0) and len(callbacks) == 1
    event = AuditEvent.objects.get(action="outbox.retried")
    assert event.actor_id == str(admin.pk) and event.data["before"]["state"] == "failed"
    assert outbox_deliver(message_id=message.pk).state == Delivered


def test_the_reconciler_picks_pending_due_messages_oldest_first(queued):
    now = timezone.now()
    due_late = _enqueue(key="a")
    due_early = _enqueue(key="b")
    not_due = _enqueue(key="c")
    delivered = _enqueue(key="d")
    OutboxMessage.objects.filter(pk=due_late.pk).update(next_attempt_at=now - timedelta(seconds=5))
    OutboxMessage.objects.filter(pk=due_early.pk).update(next_attempt_at=now - timedelta(seconds=50))
    OutboxMessage.objects.filter(pk=not_due.pk).update(next_attempt_at=now + timedelta(minutes=5))
    OutboxMessage.objects.filter(pk=delivered.pk).update(state=Delivered, next_attempt_at=None)
    queued.clear()
    assert outbox_requeue_due() == 2
    assert queued == [due_early.pk, due_late.pk]


@override_settings(OUTBOX_RETRY_BASE_SECONDS=10)
def test_retry_delays_double_and_are_capped():
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert retry_delay(40) == retry_delay(10_000) == timedelta(hours=6)  # the default cap; no overflow


@override_settings(OUTBOX_RETRY_BASE_SECONDS=1, OUTBOX_RETRY_MAX_SECONDS=8)
def test_the_retry_cap_is_a_setting():
    assert [retry_delay(n).total_seconds() for n in range(1, 7)] == [1, 2, 4, 8, 8, 8]
