"""A hub that never completes, through the real outbox and Celery worker (issue 10): the worker follows the status
resource until the outbox gives up, the Forum's beat task re-arms the follow-up, and once the hub completes the push
is sent — with the bundle posted once. The hub is tests/forum/taxii_standin.py (a real TAXII 2.1 server process)
on the worker's Forum port. No beat runs in the tests: each test runs the reconcilers as beat would."""

from __future__ import annotations

import pytest

from reviewapp.audit.models import AuditEvent
from reviewapp.forum.models import ForumPush
from reviewapp.forum.tasks import reconcile_pushes
from reviewapp.outbox.models import OutboxMessage
from reviewapp.outbox.tasks import reconcile_outbox
from tests.support import wait_for

from .test_push_status import StandIn, _approved

pytestmark = [pytest.mark.worker, pytest.mark.xdist_group("worker"), pytest.mark.django_db(transaction=True)]


def _reconcile_until(predicate, *, what: str, timeout: float = 90):
    def step():
        reconcile_outbox.delay()
        return predicate()

    return wait_for(step, timeout=timeout, interval=0.5, what=what)


@pytest.fixture
def never_completes(celery_worker, settings, artifacts_dir):
    hub = StandIn(celery_worker.forum_port, "never", artifacts_dir / f"taxii-standin-{celery_worker.forum_port}.log")
    settings.FORUM_TAXII_API_ROOT = hub.api_root
    hub.start()
    yield hub
    hub.stop()


def test_a_hub_that_never_completes_is_followed_again_by_beat_and_sent_once(never_completes, world, sharing_people):
    push, built = _approved(world, sharing_people)
    total = len(built.bundle["objects"])

    def follow_given_up():
        message = OutboxMessage.objects.filter(kind="forum_status").first()
        return message if message and message.state == "failed" else None

    # The worker posts, then follows the status until the outbox gives up (3 attempts in the test worker).
    given_up = _reconcile_until(follow_given_up, what="the status follow-up to give up")
    assert "still processing" in given_up.last_error
    push.refresh_from_db()
    assert push.state == ForumPush.State.PENDING and push.status_id and push.pending_count == total
    gets_before = never_completes.stats()["status_gets"]
    assert gets_before >= 3 and never_completes.stats()["posts"] == 1

    reconcile_pushes.delay()  # what beat sends
    wait_for(lambda: AuditEvent.objects.filter(action="outbox.retried", target_id=str(given_up.pk)).exists(),
             timeout=60, what="the Forum reconciler to re-arm the follow-up")
    _reconcile_until(lambda: never_completes.stats()["status_gets"] > gets_before, what="the status read again")
    push.refresh_from_db()
    assert push.state == ForumPush.State.PENDING

    never_completes.set_mode("pending:0")  # the hub finishes its work
    _reconcile_until(lambda: ForumPush.objects.get(pk=push.pk).state == ForumPush.State.SENT,
                     what="the push sent once the hub completes")
    # Another beat run finds nothing left to re-arm, and nothing was ever posted twice.
    reconcile_pushes.delay()
    reconcile_outbox.delay()
    wait_for(lambda: not OutboxMessage.objects.exclude(state="delivered").filter(kind__startswith="forum_").exists(),
             timeout=30, what="every Forum message delivered")
    stats = never_completes.stats()
    assert stats["posts"] == 1 and stats["objects_posted"] == total
    assert OutboxMessage.objects.filter(kind="forum_push").count() == 1
    assert AuditEvent.objects.filter(action="share.pushed", target_id=str(push.pk)).count() == 1
    assert AuditEvent.objects.filter(action="outbox.retried").count() == 1
