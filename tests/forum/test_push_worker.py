"""The push through the real outbox and Celery worker to a real medallion hub: a hub that is down means delay,
never loss or a duplicate. No beat runs in the tests: each test runs the reconciler as beat would."""

from __future__ import annotations

import pytest

from reviewapp.audit.models import AuditEvent
from reviewapp.forum import services
from reviewapp.forum.bundles import bundle_build
from reviewapp.forum.content import ShareChoice
from reviewapp.forum.models import ForumPush, SharedObject
from reviewapp.outbox.models import OutboxMessage
from reviewapp.outbox.tasks import deliver, reconcile_outbox
from tests.support import wait_for

from .conftest import FRONTIER, assert_valid_bundle

pytestmark = [pytest.mark.worker, pytest.mark.xdist_group("worker"), pytest.mark.django_db(transaction=True)]

CHOICE = ShareChoice(campaign_summary=True, fingerprints=frozenset({"9f3c0a77e41b2d10"}), volume_stats=True,
                     account_pseudonyms=True, organization_pseudonyms=True)


def _reconcile_until(predicate, *, what: str, timeout: float = 60):
    def step():
        reconcile_outbox.delay()
        return predicate()

    return wait_for(step, timeout=timeout, interval=0.5, what=what)


def _push(proposal) -> ForumPush:
    return ForumPush.objects.get(proposal=proposal)


def test_hub_down_then_up_pushes_exactly_once_and_reads_back(celery_worker, hub_down, world, sharing_people):
    campaign, _ = world.campaign(5)
    proposal = services.share_propose(proposer=sharing_people["reviewer"], source=campaign, choice=CHOICE,
                                      collection_id=FRONTIER)
    version = services.current_version(proposal)
    built = bundle_build(version)
    assert_valid_bundle(built.canonical)
    services.share_approve(officer=sharing_people["officer"], proposal=proposal, version_number=version.number,
                           bundle_sha256=built.sha256)
    message = OutboxMessage.objects.get(kind="forum_push")

    def attempted():
        message.refresh_from_db()
        return message.attempts >= 1

    wait_for(attempted, timeout=60, what="the first attempt against a hub that is down")
    assert message.state == "pending" and "Forum hub" in message.last_error
    assert _push(proposal).state == ForumPush.State.PENDING and not SharedObject.objects.exists()

    hub_down.start()
    _reconcile_until(lambda: _push(proposal).state == ForumPush.State.SENT, what="the push once the hub is up")
    # Stray duplicates (a redelivered task, another reconciler run) change nothing.
    deliver.delay(message.pk)
    reconcile_outbox.delay()
    wait_for(lambda: OutboxMessage.objects.get(pk=message.pk).state == "delivered", timeout=30, what="delivered")

    held = hub_down.objects()
    assert sorted(o["id"] for o in held) == sorted(o["id"] for o in built.bundle["objects"])
    for obj in built.bundle["objects"]:
        assert len(hub_down.versions(obj["id"])) == 1
    push = _push(proposal)
    assert push.success_count == len(built.bundle["objects"]) and push.failures == []
    assert AuditEvent.objects.filter(action="share.pushed", target_id=str(push.pk)).count() == 1
    completed = AuditEvent.objects.filter(action="share.push_completed", target_id=str(push.pk)).get()
    assert completed.data["state"] == "sent"
