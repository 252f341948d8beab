"""Withdrawal through the real outbox and Celery worker to a real medallion hub (issue 10): an overturned appeal's
withdrawal is read back from the hub as the newest version, and a hub that is down when the appeal is decided
gets the withdrawal once it is up again — once, never twice, nothing lost. No beat runs in the tests: each test
runs the reconciler as beat would."""

from __future__ import annotations

import uuid

import pytest

from appeals.services import appeal_claim, appeal_decide, appeal_file
from reviewapp.audit.models import AuditEvent
from reviewapp.cases.models import Case
from reviewapp.forum import services, taxii
from reviewapp.forum.bundles import bundle_build, canonical_bytes
from reviewapp.forum.content import ShareChoice
from reviewapp.forum.models import ForumPush, ShareWithdrawal
from reviewapp.forum.pseudonyms import account_pseudonym
from reviewapp.forum.trust_groups import trust_group
from reviewapp.outbox.models import OutboxMessage
from reviewapp.outbox.tasks import deliver, reconcile_outbox
from reviewapp.people.roles import Role
from tests.appeals.conftest import enforced_decision
from tests.support import wait_for

from .conftest import FRONTIER, assert_valid_bundle

pytestmark = [pytest.mark.worker, pytest.mark.xdist_group("worker"), pytest.mark.django_db(transaction=True)]

CHOICE = ShareChoice(campaign_summary=True, fingerprints=frozenset({"9f3c0a77e41b2d10"}), volume_stats=True,
                     account_pseudonyms=True, organization_pseudonyms=True)


def _reconcile_until(predicate, *, what: str, timeout: float = 90):
    def step():
        reconcile_outbox.delay()
        return predicate()

    return wait_for(step, timeout=timeout, interval=0.5, what=what)


def bundle_id() -> str:
    return f"bundle--{uuid.uuid4()}"


def _state(push: ForumPush) -> str:
    return ForumPush.objects.get(pk=push.pk).state


def _share(world, people, detector, policy, make_staff, settings, tmp_path, hub):
    """The holder (a real decision, so it can appeal) in a campaign of six, shared and sent through the worker."""
    settings.APPEAL_ATTACHMENTS_DIR = tmp_path / "attachments"
    holder = enforced_decision(detector, make_staff, policy["extraction"], account_id="acct_worker_holder",
                               email="holder@example.com")
    campaign, _ = world.campaign(5)
    Case.objects.filter(pk=holder.decision.case_id).update(campaign=campaign)
    proposal = services.share_propose(proposer=people["reviewer"], source=campaign, choice=CHOICE,
                                      collection_id=FRONTIER)
    version = services.current_version(proposal)
    built = bundle_build(version)
    services.share_approve(officer=people["officer"], proposal=proposal, version_number=version.number,
                           bundle_sha256=built.sha256)
    share_push = ForumPush.objects.get(proposal=proposal, purpose="share")
    _reconcile_until(lambda: _state(share_push) == ForumPush.State.SENT, what="the share on the hub")
    (observed,) = [o for o in built.bundle["objects"] if o["type"] == "observed-data"]
    return holder, built.bundle, observed


def _overturn(holder, make_staff):
    senior = make_staff(Role.SENIOR_REVIEWER, username="sven-senior")
    appeal = appeal_file(account=holder.account, decision=holder.decision, grounds="A registered evaluation.")
    appeal_claim(reviewer=senior, appeal=appeal)
    return appeal_decide(reviewer=senior, appeal=appeal, outcome="overturned", reason="It was an evaluation.")


def _newest(hub, stix_id: str) -> dict:
    (found,) = [o for o in hub.objects() if o["id"] == stix_id]
    return found


def test_overturn_withdrawal_is_the_newest_version_on_the_hub(celery_worker, forum_hub, world, sharing_people,
                                                              detector, policy, make_staff, settings, tmp_path):
    holder, bundle, observed = _share(world, sharing_people, detector, policy, make_staff, settings, tmp_path,
                                      forum_hub)
    pseudonym = account_pseudonym(holder.account.external_id)
    holder_ref = next(o["id"] for o in bundle["objects"] if o["type"] == "user-account" and o["user_id"] == pseudonym)
    assert holder_ref in _newest(forum_hub, observed["id"])["object_refs"]

    _overturn(holder, make_staff)
    push = ShareWithdrawal.objects.get(account=holder.account).push
    assert_valid_bundle(push.bundle)
    _reconcile_until(lambda: _state(push) == ForumPush.State.SENT, what="the withdrawal on the hub")

    newest = _newest(forum_hub, observed["id"])
    assert newest["modified"] > observed["modified"] and len(forum_hub.versions(observed["id"])) == 2
    assert holder_ref not in newest["object_refs"]
    assert len(newest["object_refs"]) == 5
    # Every SDO/SRO the withdrawal revoked reads back revoked as its newest version.
    revoked = [o["id"] for o in push.bundle["objects"] if o.get("revoked")]
    for stix_id in revoked:
        assert _newest(forum_hub, stix_id)["revoked"] is True


def test_hub_down_then_up_the_withdrawal_is_pushed_exactly_once(celery_worker, forum_hub, world, sharing_people,
                                                                detector, policy, make_staff, settings, tmp_path):
    holder, _bundle, observed = _share(world, sharing_people, detector, policy, make_staff, settings, tmp_path,
                                       forum_hub)
    held = forum_hub.objects()
    forum_hub.stop()

    _overturn(holder, make_staff)  # nobody waits for the hub: the appeal is decided, the withdrawal queued
    push = ShareWithdrawal.objects.get(account=holder.account).push
    assert_valid_bundle(push.bundle)
    message = OutboxMessage.objects.get(kind="forum_push", idempotency_key=f"forum-push-{push.pk}")

    def attempted():
        message.refresh_from_db()
        return message.attempts >= 1

    wait_for(attempted, timeout=60, what="the first attempt against a hub that is down")
    assert message.state == "pending" and "Forum hub" in message.last_error
    assert _state(push) == ForumPush.State.PENDING

    # The hub comes back (its memory backend empty); it gets back what it held, as a hub that kept it would.
    forum_hub.start()
    taxii.post_bundle(trust_group(FRONTIER), canonical_bytes({"type": "bundle", "id": bundle_id(), "objects": held}))
    _reconcile_until(lambda: _state(push) == ForumPush.State.SENT, what="the withdrawal once the hub is up")
    # Stray duplicates (a redelivered task, another reconciler run) change nothing.
    deliver.delay(message.pk)
    reconcile_outbox.delay()
    wait_for(lambda: OutboxMessage.objects.get(pk=message.pk).state == "delivered", timeout=30, what="delivered")

    changed = [o for o in push.bundle["objects"] if o.get("revoked") or o["id"] == observed["id"]]
    assert changed
    for obj in changed:
        versions = forum_hub.versions(obj["id"])
        assert versions.count(obj["modified"]) == 1, (obj["id"], versions)
        assert _newest(forum_hub, obj["id"])["modified"] == obj["modified"]
    assert AuditEvent.objects.filter(action="share.pushed", target_id=str(push.pk)).count() == 1
    assert ForumPush.objects.filter(purpose="withdrawal").count() == 1
    push.refresh_from_db()
    assert push.failures == [] and push.success_count == len(push.bundle["objects"])
