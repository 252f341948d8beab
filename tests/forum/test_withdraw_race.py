"""A share approved, its push still in the outbox, when the holder's appeal overturns the decision (issue 10,
DESIGN.md invariant 6). Whatever the order — the overturn before the push is delivered, the overturn while the
push is being posted, the push tried while the overturn's transaction is open — the real medallion hub ends with
nothing about the account, or with the withdrawn version as the newest version of every object about it; nothing
about it leaves unwithdrawn after the overturn. Delivery is the outbox's own, run here step by step (nothing is
queued to a broker, so no session worker takes a step); the concurrent orders run in two threads, each with its
own database connection, held at the point that matters."""

from __future__ import annotations

import threading

import pytest
from django.db import transaction

from appeals.services import appeal_claim, appeal_decide, appeal_file
from reviewapp.audit.models import AuditEvent
from reviewapp.cases.models import Case
from reviewapp.forum import services, taxii
from reviewapp.forum.bundles import bundle_build
from reviewapp.forum.content import ShareChoice
from reviewapp.forum.models import ForumPush, SharedObject, ShareProposal, ShareWithdrawal
from reviewapp.forum.pseudonyms import account_pseudonym
from reviewapp.outbox.models import OutboxMessage
from reviewapp.outbox.services import outbox_deliver
from reviewapp.people.roles import Role
from tests.appeals.conftest import enforced_decision

from .conftest import FRONTIER, assert_valid_bundle, deliver_forum_outbox
from .threads import started, waits_for

pytestmark = pytest.mark.django_db(transaction=True)

SIMHASH = "9f3c0a77e41b2d10"
HOLDER_SIMHASH = "00ff00ff00ff00ff"  # a template only the holder used: an indicator about the holder alone
CHOICE = ShareChoice(campaign_summary=True, fingerprints=frozenset({SIMHASH, HOLDER_SIMHASH}), volume_stats=True,
                     account_pseudonyms=True, organization_pseudonyms=True)


@pytest.fixture
def approved(world, sharing_people, detector, policy, make_staff, forum_hub, settings, tmp_path, monkeypatch):
    """The holder (a real decision, so it can appeal) and five other accounts of one campaign, shared with Frontier
    labs and approved; the push waits in the outbox (nothing delivers it until the test does)."""
    monkeypatch.setattr("reviewapp.outbox.services._queue_delivery", lambda message_id: None)
    settings.APPEAL_ATTACHMENTS_DIR = tmp_path / "attachments"
    holder = enforced_decision(detector, make_staff, policy["extraction"], account_id="acct_race_holder",
                               email="holder@example.com")
    campaign, _ = world.campaign(5)
    case = Case.objects.get(pk=holder.decision.case_id)
    Case.objects.filter(pk=case.pk).update(campaign=campaign)
    world.flag(holder.account, case, simhash=HOLDER_SIMHASH)
    proposal = services.share_propose(proposer=sharing_people["reviewer"], source=campaign, choice=CHOICE,
                                      collection_id=FRONTIER)
    version = services.current_version(proposal)
    built = bundle_build(version)
    assert holder.account.pk in {a for e in built.entries for a in e.account_ids}
    services.share_approve(officer=sharing_people["officer"], proposal=proposal, version_number=version.number,
                           bundle_sha256=built.sha256)
    push = ForumPush.objects.get(proposal=proposal, purpose="share")
    assert push.state == ForumPush.State.PENDING and not SharedObject.objects.exists()
    return holder, proposal, push, built


def _overturn(holder, make_staff, policy, outcome: str = "overturned"):
    senior = make_staff(Role.SENIOR_REVIEWER, username=f"sven-senior-{outcome}")
    appeal = appeal_file(account=holder.account, decision=holder.decision, grounds="A registered evaluation.")
    appeal_claim(reviewer=senior, appeal=appeal)
    if outcome == "modified":  # a lesser action replaces it: still a violation, still an overturned decision
        return appeal_decide(reviewer=senior, appeal=appeal, outcome="modified", reason="A warning suffices.",
                             clauses=[policy["research"]], action="warn", facts_for_holder="Outside the quota.")
    return appeal_decide(reviewer=senior, appeal=appeal, outcome="overturned", reason="It was an evaluation.")


def _deliver_push(push: ForumPush) -> None:
    message = OutboxMessage.objects.get(kind="forum_push", target_id=str(push.pk))
    outbox_deliver(message_id=message.pk)


def _assert_nothing_about_the_holder_stands(hub, holder, built, withdrawal: ShareWithdrawal) -> None:
    """On the hub: no object that stands names the holder's pseudonym or user-account; every object about the
    holder alone is revoked; every object the withdrawal revoked or narrowed has that version as its newest."""
    pseudonym = account_pseudonym(holder.account.external_id)
    holder_sco = next(o["id"] for o in built.bundle["objects"]
                      if o["type"] == "user-account" and o["user_id"] == pseudonym)
    held = {o["id"]: o for o in hub.objects()}
    standing = [o for o in held.values() if not o.get("revoked") and o["type"] != "user-account"]
    assert not [o["id"] for o in standing if pseudonym in str(o) or holder_sco in str(o)]
    holders_alone = {e.object["id"] for e in built.entries
                     if e.account_ids == (holder.account.pk,) and e.object["type"] != "user-account"}
    assert holders_alone and all(held[i]["revoked"] for i in holders_alone)
    for stix_id in [*withdrawal.revoked_ids, *withdrawal.narrowed_ids]:
        newest = SharedObject.objects.filter(stix_id=stix_id, collection_id=FRONTIER).order_by("-modified").first()
        assert newest.push_id == withdrawal.push_id and held[stix_id]["modified"] == newest.modified, stix_id


@pytest.mark.parametrize("outcome", ["overturned", "modified"])
def test_overturn_before_the_push_is_delivered_stops_it(approved, make_staff, policy, forum_hub, outcome):
    holder, proposal, push, _ = approved
    appeal = _overturn(holder, make_staff, policy, outcome)
    push.refresh_from_db()
    assert push.state == ForumPush.State.STOPPED and "overturned" in push.last_error
    withdrawal = ShareWithdrawal.objects.get(proposal=proposal, account=holder.account)
    assert withdrawal.push is None and withdrawal.appeal_id == appeal.pk
    event = AuditEvent.objects.get(action="share.objects_revoked", target_id=str(proposal.pk))
    assert event.data["unsent_pushes_stopped"] == [push.pk]

    deliver_forum_outbox()  # the push's message is delivered: it sends nothing
    push.refresh_from_db()
    assert push.state == ForumPush.State.STOPPED and not push.status_id
    assert forum_hub.objects() == []
    assert not AuditEvent.objects.filter(action="share.pushed").exists()
    # The bundle as it would be built now leaves the holder out (a lesser action is still a violation).
    rebuilt = bundle_build(services.current_version(proposal))
    assert holder.account.pk not in {a for e in rebuilt.entries for a in e.account_ids}


def test_overturn_while_the_push_is_being_posted_waits_for_it_then_withdraws(approved, make_staff, policy,
                                                                            forum_hub, monkeypatch):
    holder, proposal, push, built = approved
    posted, release = threading.Event(), threading.Event()
    real_post = taxii.post_bundle

    def post_and_hold(group, body):
        status = real_post(group, body)  # on the hub now; the delivery's transaction is still open
        posted.set()
        assert release.wait(60)
        return status

    monkeypatch.setattr(taxii, "post_bundle", post_and_hold)
    errors: list[BaseException] = []
    delivering = started(lambda: _deliver_push(push), errors)
    assert posted.wait(60)
    waits_for(delivering, release, lambda: _overturn(holder, make_staff, policy), errors,
              what="the overturn must wait for the push being posted")
    push.refresh_from_db()
    assert push.state == ForumPush.State.SENT
    withdrawal = ShareWithdrawal.objects.get(proposal=proposal, account=holder.account)
    assert withdrawal.push is not None and withdrawal.revoked_ids and withdrawal.narrowed_ids
    assert_valid_bundle(withdrawal.push.bundle)
    deliver_forum_outbox()
    withdrawal.push.refresh_from_db()
    assert withdrawal.push.state == ForumPush.State.SENT, withdrawal.push.failures
    _assert_nothing_about_the_holder_stands(forum_hub, holder, built, withdrawal)
    assert ShareProposal.objects.get(pk=proposal.pk).state == "approved"


def test_push_tried_while_the_overturn_is_committing_sends_nothing(approved, make_staff, policy, forum_hub):
    holder, _, push, _ = approved
    inside, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def overturn_and_hold():
        with transaction.atomic():
            _overturn(holder, make_staff, policy)
            inside.set()
            assert release.wait(60)

    overturning = started(overturn_and_hold, errors)
    assert inside.wait(60)
    waits_for(overturning, release, lambda: _deliver_push(push), errors,
              what="the push must wait for the overturn's transaction")
    push.refresh_from_db()
    assert push.state == ForumPush.State.STOPPED
    deliver_forum_outbox()
    assert forum_hub.objects() == []
    assert not AuditEvent.objects.filter(action="share.pushed").exists()
