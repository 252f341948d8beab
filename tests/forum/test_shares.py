"""Share proposals: only reviewed violations leave, TLP and cluster-size rules, researcher overrides, four eyes,
and the hash lock between approval and push (against a real medallion hub, delivery run in this process)."""

from __future__ import annotations

import pytest
import rfc8785
from django.core.exceptions import PermissionDenied

from flags.models import Flag
from reviewapp.audit.models import AuditEvent
from reviewapp.forum import services
from reviewapp.forum.bundles import bundle_build as _bundle_build
from reviewapp.forum.bundles import sharer_identity, what_leaves
from reviewapp.forum.content import ShareChoice, ShareError
from reviewapp.forum.models import ForumPush, ShareAccount, SharedObject, ShareProposal
from reviewapp.forum.pseudonyms import account_pseudonym
from reviewapp.forum.tlp import MARKING_IDS, Tlp
from reviewapp.outbox.models import OutboxMessage

from .conftest import FRONTIER, assert_valid_bundle, deliver_forum_outbox

pytestmark = pytest.mark.django_db(transaction=True)

FULL = ShareChoice(campaign_summary=True, fingerprints=frozenset({"9f3c0a77e41b2d10"}), volume_stats=True,
                   account_pseudonyms=True, organization_pseudonyms=True)


def bundle_build(version):
    """Every bundle a test builds goes through the OASIS validator, and its bytes are the reference RFC 8785 ones."""
    built = _bundle_build(version)
    assert_valid_bundle(built.canonical)
    assert built.canonical == rfc8785.dumps(built.bundle)
    return built


def _propose(world, people, source, choice=FULL, **kwargs):
    return services.share_propose(proposer=people["reviewer"], source=source, choice=choice,
                                  collection_id=kwargs.pop("collection_id", FRONTIER), **kwargs)


def _approve(people, proposal, officer="officer"):
    proposal.refresh_from_db()
    version = services.current_version(proposal)
    return services.share_approve(officer=people[officer], proposal=proposal, version_number=version.number,
                                  bundle_sha256=bundle_build(version).sha256)


def _deliver(push: ForumPush) -> ForumPush:
    """What the outbox worker does for the push's messages, here in the test process."""
    deliver_forum_outbox()
    push.refresh_from_db()
    return push


def test_a_bundle_beyond_ascii_is_sent_as_rfc8785_utf8_not_escaped(world, sharing_people, settings):
    """A sharer's name outside ASCII travels as UTF-8, as RFC 8785 writes it (json's default would escape it)."""
    settings.FORUM_SHARER_NAME = "Laboratoire Ésope — Trust & Safety"
    campaign, _ = world.campaign(6)
    built = bundle_build(services.current_version(_propose(world, sharing_people, campaign)))
    assert "Laboratoire Ésope — Trust & Safety".encode() in built.canonical


def test_campaign_share_carries_pseudonyms_never_raw_ids_and_validates(world, sharing_people):
    campaign, accounts = world.campaign(6)
    proposal = _propose(world, sharing_people, campaign)
    built = bundle_build(services.current_version(proposal))
    assert_valid_bundle(built.canonical)
    text = built.canonical.decode()
    for account in accounts:
        assert account.external_id not in text
        assert account.organization_id not in text
        assert account_pseudonym(account.external_id) in text
    types = [o["type"] for o in built.bundle["objects"]]
    assert types.count("user-account") == 6
    assert {"campaign", "attack-pattern", "indicator", "sighting", "observed-data", "marking-definition"} <= set(types)
    sharer = sharer_identity().id
    marked = [o for o in built.bundle["objects"] if o["type"] != "marking-definition" and o["id"] != sharer]
    assert marked and all(o["object_marking_refs"] == [MARKING_IDS[Tlp.AMBER_STRICT]] for o in marked)
    line = what_leaves(built.summary)
    assert line.startswith("6 account pseudonyms, 2 organisation pseudonyms, 1 fingerprint, 0 prompt excerpts")
    assert line.endswith("TLP:AMBER+STRICT, to Frontier labs (all Forum members)")


def test_only_accounts_with_a_recorded_violation_leave(world, sharing_people):
    _account, case = world.account(decided=False)
    with pytest.raises(ShareError) as refused:
        _propose(world, sharing_people, case, choice=ShareChoice())
    assert refused.value.field == "source"
    cleared, _ = world.account(action="no_violation")
    with pytest.raises(ShareError, match="no account in it has a recorded violation decision"):
        _propose(world, sharing_people, cleared, choice=ShareChoice())
    assert not ShareProposal.objects.exists()


def test_account_pseudonyms_need_a_cluster_of_k(world, sharing_people, settings):
    settings.FORUM_MIN_CLUSTER_SIZE = 5
    campaign, _ = world.campaign(4)
    with pytest.raises(ShareError) as refused:
        _propose(world, sharing_people, campaign)
    assert refused.value.field == "account_pseudonyms"
    assert "at least 5 accounts; this share has 4" in str(refused.value)


def test_tlp_must_protect_pseudonyms_and_excerpts(world, sharing_people):
    campaign, _ = world.campaign(5)
    with pytest.raises(ShareError) as refused:
        _propose(world, sharing_people, campaign, tlp=Tlp.GREEN)
    assert refused.value.field == "tlp"
    proposal = _propose(world, sharing_people, campaign, choice=ShareChoice(volume_stats=True), tlp=Tlp.GREEN)
    assert services.current_version(proposal).tlp == Tlp.GREEN


def test_excerpts_leave_only_when_ticked_and_redacted(world, sharing_people):
    account, case = world.account(external_id="acct_secret_42", email="eve@example.com", flags=[
        {"excerpts": ["Ticked: mail eve@example.com from 10.1.2.3 as acct_secret_42", "Never ticked: hidden text"]}])
    flag = Flag.objects.get(account_external_id=account.external_id)
    proposal = _propose(world, sharing_people, case, choice=ShareChoice(excerpts=frozenset({(flag.pk, 0)})))
    built = bundle_build(services.current_version(proposal))
    assert_valid_bundle(built.canonical)
    notes = [o for o in built.bundle["objects"] if o["type"] == "note"]
    assert [n["content"] for n in notes] == ["Ticked: mail [redacted] from [redacted] as [redacted]"]
    text = built.canonical.decode()
    assert "Never ticked" not in text and "eve@example.com" not in text and "10.1.2.3" not in text
    assert "acct_secret_42" not in text


def test_researcher_accounts_are_excluded_unless_an_officer_includes_one_with_a_reason(world, sharing_people):
    campaign, _accounts = world.campaign(5)
    researcher, _ = world.account(campaign=campaign, researcher=True)
    proposal = _propose(world, sharing_people, campaign)
    version = services.current_version(proposal)
    assert version.accounts.get(account=researcher).excluded == ShareAccount.Exclusion.RESEARCHER
    assert account_pseudonym(researcher.external_id) not in bundle_build(version).canonical.decode()
    with pytest.raises(ShareError, match="give a reason"):
        services.share_include_researcher(officer=sharing_people["officer"], proposal=proposal, account=researcher,
                                          reason=" ")
    v2 = services.share_include_researcher(officer=sharing_people["officer"], proposal=proposal, account=researcher,
                                           reason="Programme membership lapsed; confirmed by the programme lead.")
    assert v2.number == 2
    assert account_pseudonym(researcher.external_id) in bundle_build(v2).canonical.decode()
    event = AuditEvent.objects.get(action="share.researcher_included")
    assert event.data["account_id"] == researcher.pk and "lapsed" in event.data["reason"]


def test_four_eyes_the_proposer_never_approves(world, sharing_people, make_staff):
    from django.contrib.auth.models import Group

    campaign, _ = world.campaign(5)
    both = sharing_people["reviewer"]
    both.groups.add(Group.objects.get(name="sharing_officer"))  # a reviewer who is also a sharing officer
    both = type(both).objects.get(pk=both.pk)
    proposal = services.share_propose(proposer=both, source=campaign, choice=FULL, collection_id=FRONTIER)
    version = services.current_version(proposal)
    with pytest.raises(PermissionDenied, match="another sharing officer"):
        services.share_approve(officer=both, proposal=proposal, version_number=1,
                               bundle_sha256=version.bundle_sha256)
    with pytest.raises(PermissionDenied):
        services.share_approve(officer=make_staff(), proposal=proposal, version_number=1,
                               bundle_sha256=version.bundle_sha256)
    proposal.refresh_from_db()
    assert proposal.state == ShareProposal.State.AWAITING_APPROVAL and not ForumPush.objects.exists()
    approval = _approve(sharing_people, proposal)
    assert approval.approved_by == sharing_people["officer"]
    assert approval.bundle_sha256 == version.bundle_sha256
    assert AuditEvent.objects.filter(action="share.approved", target_id=str(proposal.pk)).count() == 1


def test_reject_needs_a_reason_and_narrowing_makes_a_new_version_to_preview(world, sharing_people):
    campaign, _ = world.campaign(5)
    proposal = _propose(world, sharing_people, campaign)
    v1 = services.current_version(proposal)
    with pytest.raises(ShareError):
        services.share_narrow(officer=sharing_people["officer"], proposal=proposal,
                              choice=ShareChoice(excerpts=frozenset({(1, 0)})), reason="more")
    v2 = services.share_narrow(officer=sharing_people["officer"], proposal=proposal,
                               choice=ShareChoice(campaign_summary=True, volume_stats=True), reason="No pseudonyms.")
    assert v2.number == 2 and v2.bundle_sha256 != v1.bundle_sha256
    assert "user-account" not in bundle_build(v2).canonical.decode()
    with pytest.raises(ShareError) as stale:  # approving what was previewed before the narrowing
        services.share_approve(officer=sharing_people["officer2"], proposal=proposal, version_number=1,
                               bundle_sha256=v1.bundle_sha256)
    assert stale.value.field == "version"
    with pytest.raises(ShareError):
        services.share_reject(officer=sharing_people["officer2"], proposal=proposal, reason="")
    services.share_reject(officer=sharing_people["officer2"], proposal=proposal, reason="Not enough evidence.")
    proposal.refresh_from_db()
    assert proposal.state == ShareProposal.State.REJECTED
    assert AuditEvent.objects.filter(action="share.rejected").get().data["reason"] == "Not enough evidence."


def test_push_sends_the_approved_bytes_and_reads_back_from_the_hub(world, sharing_people, forum_hub):
    campaign, accounts = world.campaign(5)
    proposal = _propose(world, sharing_people, campaign)
    approval = _approve(sharing_people, proposal)
    push = _deliver(ForumPush.objects.get(proposal=proposal))
    assert push.state == ForumPush.State.SENT, push.last_error
    held = {o["id"]: o for o in forum_hub.objects()}
    sent = bundle_build(approval.version).bundle["objects"]
    assert {o["id"] for o in sent} == set(held)
    assert push.success_count == len(sent) and push.failure_count == 0
    ledger = SharedObject.objects.filter(push=push)
    assert ledger.filter(stix_type="user-account").count() == 5
    assert sorted(ledger.get(stix_type="observed-data").account_ids) == sorted(a.pk for a in accounts)
    assert all(row.accepted for row in ledger)


def test_hash_lock_refuses_a_push_that_differs_by_a_byte(world, sharing_people, forum_hub):
    campaign, accounts = world.campaign(5)
    proposal = _propose(world, sharing_people, campaign)
    _approve(sharing_people, proposal)
    # Between approval and push an account's decision is reversed on appeal: it must not leave, so the rebuilt
    # bundle differs from the approved one.
    from reviewapp.cases.models import Decision

    Decision.objects.filter(account=accounts[0]).update(state=Decision.State.REVERSED)
    push = _deliver(ForumPush.objects.get(proposal=proposal))
    assert push.state == ForumPush.State.REFUSED
    assert push.refused_sha256 and push.refused_sha256 != push.bundle_sha256
    assert forum_hub.objects() == []
    event = AuditEvent.objects.get(action="share.push_refused")
    assert event.data["approved_sha256"] == push.bundle_sha256
    assert OutboxMessage.objects.get(idempotency_key=f"forum-push-{push.pk}").state == "delivered"  # not retried


def test_a_resend_after_a_lost_answer_is_not_a_duplicate(world, sharing_people, forum_hub):
    from reviewapp.forum import taxii
    from reviewapp.forum.trust_groups import trust_group

    campaign, _ = world.campaign(5)
    proposal = _propose(world, sharing_people, campaign)
    approval = _approve(sharing_people, proposal)
    body = bundle_build(approval.version).canonical
    taxii.post_bundle(trust_group(FRONTIER), body)  # the hub took it, but (say) the answer never reached us
    push = _deliver(ForumPush.objects.get(proposal=proposal))
    assert push.state == ForumPush.State.SENT, push.failures
    ids = [o["id"] for o in forum_hub.objects()]
    assert len(ids) == len(set(ids))
    for stix_id in ids:
        assert len(forum_hub.versions(stix_id)) == 1


def test_destination_and_typed_text_are_checked_by_the_service(world, sharing_people):
    campaign, accounts = world.campaign(5)
    with pytest.raises(ShareError) as unknown:
        _propose(world, sharing_people, campaign, collection_id="not-a-trust-group")
    assert unknown.value.field == "collection_id" and "not a configured trust group" in str(unknown.value)
    with pytest.raises(ShareError) as typed:
        _propose(world, sharing_people, campaign, intrusion_set_name=f"Group of {accounts[0].external_id}")
    assert typed.value.field == "intrusion_set_name"
    with pytest.raises(ShareError) as mail:
        _propose(world, sharing_people, campaign, intrusion_set_name="ops@rival.example")
    assert mail.value.field == "intrusion_set_name"
    proposal = _propose(world, sharing_people, campaign, intrusion_set_name="Copycat Collective")
    built = bundle_build(services.current_version(proposal))
    names = {o["type"]: o.get("name") for o in built.bundle["objects"]}
    assert names["intrusion-set"] == "Copycat Collective"
    relationship = next(o for o in built.bundle["objects"] if o.get("relationship_type") == "attributed-to")
    assert relationship["source_ref"].startswith("campaign--")
    with pytest.raises(ShareError) as looser:
        services.share_narrow(officer=sharing_people["officer"], proposal=proposal, choice=ShareChoice(),
                              reason="Open it up.", tlp=Tlp.GREEN)
    assert looser.value.field in {"items", "tlp"}
