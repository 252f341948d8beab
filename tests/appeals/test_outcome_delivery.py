"""An overturned appeal lifts the enforcement on the platform: a REAL Celery worker delivers the reversal to a
real enforcement receiver, exactly once, also when the platform was down when the appeal was decided.

The worker posts to ``celery_worker.enforcement_port`` and mails to ``celery_worker.smtp_port`` (tests/conftest.py).
There is no beat here: a test runs the reconciler itself, through the broker, as beat does.
"""

from __future__ import annotations

import email
import email.policy

import pytest
from django.db import transaction

from appeals.services import appeal_claim, appeal_decide
from reviewapp.cases.models import Account, Decision
from reviewapp.outbox.models import OutboxMessage
from reviewapp.outbox.services import outbox_enqueue
from reviewapp.outbox.tasks import deliver, reconcile_outbox
from reviewapp.people.roles import Role
from tests.conftest import applied
from tests.support import wait_for

from .review_fixtures import attachments_dir_fixture, decide, file_appeal, flagged_case  # noqa: F401 (fixture)

pytestmark = [pytest.mark.worker, pytest.mark.xdist_group("worker"), pytest.mark.django_db(transaction=True)]

REASON = "The volume matches the published benchmark you run under the researcher programme."


def _message(key: str) -> OutboxMessage | None:
    return OutboxMessage.objects.filter(idempotency_key=key).first()


def _delivered(key: str) -> bool:
    message = _message(key)
    return message is not None and message.state == OutboxMessage.State.DELIVERED


def _reconcile_until(predicate, *, what: str, timeout: float = 60):
    """Run the reconciler the way beat does (a task on the broker) until predicate() holds."""
    def step():
        reconcile_outbox.delay()
        return predicate()

    return wait_for(step, timeout=timeout, interval=0.5, what=what)


def _drain(key: str) -> None:
    """Wait until the worker has worked through everything queued so far (one worker, first in, first out)."""
    with transaction.atomic():
        outbox_enqueue(kind="enforcement", idempotency_key=key, payload={"event": "test.marker", "account_id": key})
    wait_for(lambda: _delivered(key), timeout=30, what="the marker message to be delivered")


@pytest.fixture
def platform(celery_worker, start_receiver, tmp_path):
    """The platform's enforcement endpoint, up before anything is decided (``.restart()`` after a ``stop()``)."""
    log_path = tmp_path / "platform.jsonl"
    receiver = start_receiver(port=celery_worker.enforcement_port, log_path=log_path)
    receiver.restart = lambda: start_receiver(port=celery_worker.enforcement_port, log_path=log_path)
    return receiver


@pytest.fixture
def enforced(platform, smtp_server, policy, make_staff, attachments_dir):
    """dana suspends acct_deliver (T-1, enforced at once) and the platform applies it; the holder appeals;
    olga, who took no part, claims the appeal."""
    decision = decide(flagged_case("template-miner", "acct_deliver"), reviewer=make_staff(Role.SENIOR_REVIEWER, "dana"),
                      clauses=[policy["extraction"]])
    wait_for(lambda: _delivered(f"enforcement-apply-{decision.pk}"), timeout=30, what="the suspension to be applied")
    appeal = file_appeal(decision)
    olga = make_staff(Role.SENIOR_REVIEWER, "olga")
    appeal_claim(reviewer=olga, appeal=appeal)
    return decision, appeal, olga


def _keys(platform) -> list[str]:
    return [entry["idempotency_key"] for entry in applied(platform.log_path)]


def test_the_reversal_reaches_the_platform_once_and_the_holder_is_told(platform, smtp_server, enforced):
    decision, appeal, olga = enforced

    appeal_decide(reviewer=olga, appeal=appeal, outcome="overturned", reason=REASON)
    assert Account.objects.get(pk=decision.account_id).enforcement_status == Account.EnforcementStatus.NONE
    assert Decision.objects.get(pk=decision.pk).state == Decision.State.REVERSED

    key = f"enforcement-reverse-{decision.pk}"
    wait_for(lambda: _delivered(key), timeout=30, what="the reversal to be delivered")
    [entry] = [e for e in applied(platform.log_path) if e["idempotency_key"] == key]
    assert entry["event"] == "enforcement.reverse"
    assert entry["payload"]["account_id"] == "acct_deliver" and entry["payload"]["decision_id"] == decision.pk

    # Stray duplicates (a second reconciler run, a redelivered task) change nothing on the platform.
    deliver.delay(_message(key).pk)
    reconcile_outbox.delay()
    _drain("marker-appeal-1")
    assert _keys(platform).count(key) == 1 and _message(key).attempts == 1
    assert _keys(platform)[:2] == [f"enforcement-apply-{decision.pk}", key]

    # The holder's outcome email went through the real SMTP server, with the Art. 21 options.
    wait_for(lambda: _delivered(f"appeal-outcome-{appeal.pk}"), timeout=30, what="the outcome email to be sent")
    mails = [email.message_from_bytes(e.original_content, policy=email.policy.default) for e in smtp_server.envelopes]
    [outcome] = [m for m in mails if m["Subject"] == f"Your appeal no. {appeal.pk} is decided"]
    text = outcome.get_body(("plain",)).get_content()
    assert outcome["To"] == "holder@example.org" and REASON in text
    assert "Article 21 of the Digital Services Act" in text


def test_a_platform_down_at_the_overturn_gets_the_reversal_once_when_it_is_back(platform, enforced):
    decision, appeal, olga = enforced
    platform.stop()  # the platform goes down

    appeal_decide(reviewer=olga, appeal=appeal, outcome="overturned", reason=REASON)
    key = f"enforcement-reverse-{decision.pk}"
    wait_for(lambda: (_message(key).attempts or 0) >= 1, timeout=30, what="the first attempt at the reversal")
    message = _message(key)
    assert message.state == OutboxMessage.State.PENDING and "could not reach" in message.last_error
    assert _keys(platform).count(key) == 0
    # Our side is already done: the account is free, whatever the platform's state.
    assert Account.objects.get(pk=decision.account_id).enforcement_status == Account.EnforcementStatus.NONE

    back = platform.restart()  # the platform is back (it remembers what it applied: the same log)
    _reconcile_until(lambda: _delivered(key), what="the reversal once the platform is up")
    reconcile_outbox.delay()
    _drain("marker-appeal-2")
    assert _keys(back).count(key) == 1
    assert _keys(back).count(f"enforcement-apply-{decision.pk}") == 1
    assert _message(key).attempts == 2
