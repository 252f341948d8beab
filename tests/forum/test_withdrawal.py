"""Withdrawal when we were wrong (issue 10, DESIGN.md invariant 6): an appeal that overturns a decision withdraws
what we shared about that account — revoked new versions, or the accounts' observed-data again without its
pseudonym — read back from a real medallion hub as the newest version; a sharing officer withdraws a whole share
with a reason. Delivery here runs the outbox's own delivery in this process (the worker's path is
test_withdrawal_worker.py). Every withdrawal bundle passes stix2-validator 3.3.2."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from appeals.services import appeal_claim, appeal_decide, appeal_file
from reviewapp.audit.models import AuditEvent
from reviewapp.cases.models import Case
from reviewapp.forum import services
from reviewapp.forum.bundles import bundle_build
from reviewapp.forum.content import ShareChoice, ShareError
from reviewapp.forum.models import ForumPush, SharedObject, ShareProposal, ShareState, ShareWithdrawal
from reviewapp.forum.pseudonyms import account_pseudonym
from reviewapp.outbox.models import OutboxMessage
from reviewapp.people.roles import Role
from tests.appeals.conftest import enforced_decision

from .conftest import FRONTIER, assert_valid_bundle, deliver_forum_outbox

pytestmark = pytest.mark.django_db(transaction=True)

SIMHASH = "9f3c0a77e41b2d10"
HOLDER_SIMHASH = "00ff00ff00ff00ff"  # a prompt template only the holder used


def _deliver_all() -> None:
    """What the worker does for every waiting Forum message, here in the test process (and what a session
    worker started by an earlier test on this node took and failed against its own hub port, taken back)."""
    deliver_forum_outbox()


class Shared:
    def __init__(self, holder, campaign, others, proposal, bundle):
        self.holder, self.campaign, self.others, self.proposal, self.bundle = holder, campaign, others, proposal, bundle

    @property
    def account(self):
        return self.holder.account


@pytest.fixture
def shared(world, sharing_people, detector, policy, make_staff, forum_hub, settings, tmp_path):
    """Account ``acct_holder`` (a real decision with its statement, so it can appeal) and six other accounts of
    one campaign, shared with Frontier labs (pseudonyms, fingerprint, organisations, the holder's excerpt)
    and pushed to the hub."""
    settings.APPEAL_ATTACHMENTS_DIR = tmp_path / "attachments"
    holder = enforced_decision(detector, make_staff, policy["extraction"], account_id="acct_holder",
                               email="holder@example.com")
    campaign, others = world.campaign(6)
    Case.objects.filter(pk=holder.decision.case_id).update(campaign=campaign)
    world.flag(holder.account, Case.objects.get(pk=holder.decision.case_id), simhash=HOLDER_SIMHASH,
               excerpts=("Holder's own prompt: translate {text}",))
    excerpt = _holder_excerpt(holder.account)
    choice = ShareChoice(campaign_summary=True, fingerprints=frozenset({SIMHASH, HOLDER_SIMHASH}),
                         volume_stats=True, account_pseudonyms=True, organization_pseudonyms=True,
                         excerpts=frozenset({excerpt}))
    proposal = services.share_propose(proposer=sharing_people["reviewer"], source=campaign, choice=choice,
                                      collection_id=FRONTIER)
    version = services.current_version(proposal)
    built = bundle_build(version)
    services.share_approve(officer=sharing_people["officer"], proposal=proposal, version_number=version.number,
                           bundle_sha256=built.sha256)
    _deliver_all()
    assert ForumPush.objects.get(proposal=proposal, purpose="share").state == ForumPush.State.SENT
    return Shared(holder, campaign, others, proposal, built.bundle)


def _holder_excerpt(account) -> tuple[int, int]:
    from flags.models import Flag

    flag = Flag.objects.get(account_external_id=account.external_id, evidence__template_simhash64=HOLDER_SIMHASH)
    return (flag.pk, 0)


def _overturn(shared: Shared, make_staff):
    senior = make_staff(Role.SENIOR_REVIEWER, username="sven-senior")
    appeal = appeal_file(account=shared.account, decision=shared.holder.decision, grounds="We are a lab.")
    appeal_claim(reviewer=senior, appeal=appeal)
    return appeal_decide(reviewer=senior, appeal=appeal, outcome="overturned", reason="A registered evaluation.")


def _newest(hub, stix_id: str) -> dict:
    (found,) = [o for o in hub.objects() if o["id"] == stix_id]
    return found


def _ids(bundle: dict, stix_type: str) -> list[str]:
    return [o["id"] for o in bundle["objects"] if o["type"] == stix_type]


def test_overturn_withdraws_what_was_shared_about_the_account_read_back_from_the_hub(shared, make_staff, forum_hub):
    pseudonym = account_pseudonym(shared.account.external_id)
    (observed,) = _ids(shared.bundle, "observed-data")
    (note,) = _ids(shared.bundle, "note")
    holder_indicator = next(o["id"] for o in shared.bundle["objects"] if o["type"] == "indicator"
                            and HOLDER_SIMHASH in o["pattern"])
    holder_user_account = next(o["id"] for o in shared.bundle["objects"] if o["type"] == "user-account"
                               and o["user_id"] == pseudonym)
    assert holder_user_account in _newest(forum_hub, observed)["object_refs"]

    appeal = _overturn(shared, make_staff)
    withdrawal = ShareWithdrawal.objects.get(proposal=shared.proposal, account=shared.account)
    assert withdrawal.appeal_id == appeal.pk and withdrawal.withdrawn_by is None
    push = withdrawal.push
    assert push.purpose == ForumPush.Purpose.WITHDRAWAL and push.state == ForumPush.State.PENDING
    assert_valid_bundle(push.bundle)
    _deliver_all()
    push.refresh_from_db()
    assert push.state == ForumPush.State.SENT, push.failures

    # The newest version on the hub: the holder's excerpt and their own fingerprint revoked (and what pointed at
    # the fingerprint), the observed-data without their pseudonym; the other accounts' pseudonyms stay.
    assert _newest(forum_hub, note)["revoked"] is True
    assert _newest(forum_hub, holder_indicator)["revoked"] is True
    newest_observed = _newest(forum_hub, observed)
    assert not newest_observed.get("revoked")
    assert holder_user_account not in newest_observed["object_refs"]
    assert len(newest_observed["object_refs"]) == 6
    assert newest_observed["modified"] > next(o for o in shared.bundle["objects"] if o["id"] == observed)["modified"]
    assert len(forum_hub.versions(observed)) == 2
    indicates = [o for o in shared.bundle["objects"] if o["type"] == "relationship"
                 and o["source_ref"] == holder_indicator]
    assert indicates and all(_newest(forum_hub, r["id"])["revoked"] for r in indicates)
    # What still holds without the holder is not touched (one version on the hub).
    (campaign,) = _ids(shared.bundle, "campaign")
    assert not _newest(forum_hub, campaign).get("revoked") and len(forum_hub.versions(campaign)) == 1
    assert pseudonym not in str([o for o in forum_hub.objects() if o["type"] != "user-account"])

    event = AuditEvent.objects.get(action="share.objects_revoked", target_id=str(shared.proposal.pk))
    assert event.data["account_id"] == shared.account.pk and event.data["appeal_id"] == appeal.pk
    assert set(event.data["revoked"]) >= {note, holder_indicator} and event.data["narrowed"] == [observed]
    ledger = SharedObject.objects.filter(push=push, stix_id=observed).get()
    assert shared.account.pk not in ledger.account_ids and pseudonym not in ledger.pseudonyms
    # The share itself stays approved: only what was about the holder went.
    shared.proposal.refresh_from_db()
    assert shared.proposal.state == ShareState.APPROVED


def test_a_second_overturn_keeps_the_first_account_out(shared, make_staff, forum_hub, world):
    """Another account of the share overturned later (the reversal itself, as an appeal makes it): the account
    list loses its pseudonym too, and the first account's does not come back."""
    from reviewapp.cases.models import Decision
    from reviewapp.cases.services.decisions import decision_reverse_on_appeal

    _overturn(shared, make_staff)
    _deliver_all()
    second = shared.others[0]
    decision = Decision.objects.get(account=second)
    decision_reverse_on_appeal(decision=decision, actor=make_staff(Role.SENIOR_REVIEWER, username="s2"),
                               appeal_id=999_001, reason="overturned")
    _deliver_all()
    (observed,) = _ids(shared.bundle, "observed-data")
    newest = _newest(forum_hub, observed)
    refs = newest["object_refs"]
    assert len(refs) == 5 and len(forum_hub.versions(observed)) == 3
    for account in (shared.account, second):
        assert account_pseudonym(account.external_id) not in str(newest)


def test_below_the_cluster_size_the_account_list_is_revoked(shared, make_staff, forum_hub, settings):
    settings.FORUM_MIN_CLUSTER_SIZE = 7
    _overturn(shared, make_staff)
    push = ShareWithdrawal.objects.get(account=shared.account).push
    assert_valid_bundle(push.bundle)
    _deliver_all()
    (observed,) = _ids(shared.bundle, "observed-data")
    assert _newest(forum_hub, observed)["revoked"] is True
    related = [o["id"] for o in shared.bundle["objects"] if o["type"] == "relationship" and o["source_ref"] == observed]
    assert related and all(_newest(forum_hub, r)["revoked"] for r in related)


def test_an_upheld_appeal_withdraws_nothing(shared, make_staff):
    senior = make_staff(Role.SENIOR_REVIEWER, username="sven-senior")
    appeal = appeal_file(account=shared.account, decision=shared.holder.decision, grounds="No.")
    appeal_claim(reviewer=senior, appeal=appeal)
    appeal_decide(reviewer=senior, appeal=appeal, outcome="upheld", reason="It stands.")
    assert not ShareWithdrawal.objects.exists()
    assert not ForumPush.objects.filter(purpose="withdrawal").exists()


def test_officer_withdraws_a_whole_share_with_a_reason(shared, sharing_people, forum_hub):
    officer = sharing_people["officer2"]
    with pytest.raises(ShareError) as refused:
        services.share_withdraw(officer=officer, proposal=shared.proposal, reason="  ")
    assert refused.value.field == "reason"
    with pytest.raises(ShareError, match="the limit is 2,000"):
        services.share_withdraw(officer=officer, proposal=shared.proposal, reason="x" * 2_001)
    for role in ("reviewer", "compliance"):
        with pytest.raises(PermissionDenied):
            services.share_withdraw(officer=sharing_people[role], proposal=shared.proposal, reason="Wrong cluster.")
    assert not ShareWithdrawal.objects.exists() and not AuditEvent.objects.filter(action="share.withdrawn").exists()

    services.share_withdraw(officer=officer, proposal=shared.proposal, reason="The cluster was mislabelled.")
    proposal = ShareProposal.objects.get(pk=shared.proposal.pk)
    assert proposal.state == ShareState.WITHDRAWN and proposal.withdrawn_by == officer
    assert proposal.withdrawal_reason == "The cluster was mislabelled."
    event = AuditEvent.objects.get(action="share.withdrawn", target_id=str(proposal.pk))
    assert event.actor_id == str(officer.pk) and event.data["reason"] == "The cluster was mislabelled."
    push = ForumPush.objects.get(purpose="withdrawal", proposal=proposal)
    assert_valid_bundle(push.bundle)
    _deliver_all()
    push.refresh_from_db()
    assert push.state == ForumPush.State.SENT, push.failures
    held = {o["id"]: o for o in forum_hub.objects()}
    from reviewapp.forum.bundles import sharer_identity

    for obj in shared.bundle["objects"]:
        if obj["type"] == "user-account":  # STIX cannot revoke an SCO: deleted (test_withdraw_scos.py)
            assert obj["id"] not in held
        elif obj["type"] == "marking-definition" or obj["id"] == sharer_identity().id:
            assert not held[obj["id"]].get("revoked")
        else:
            assert held[obj["id"]]["revoked"] is True, obj["type"]
    # Withdrawn is final: a second withdrawal is refused, and so is an overturn's (nothing left to withdraw).
    from reviewapp.forum.services import InvalidShareTransition

    with pytest.raises(InvalidShareTransition):
        services.share_withdraw(officer=officer, proposal=proposal, reason="Again.")


# ── what the holder is told ─────────────────────────────────────────────────────────────────────────────────────

def _portal(client, account) -> str:
    from tests.appeals.conftest import sign_in_path

    assert client.post(sign_in_path(account)).status_code == 302
    page = client.get(reverse("appeals:home"))
    assert page.status_code == 200
    return page.content.decode()


def _section(html: str) -> str:
    start = html.index('id="shared-heading"')
    return html[start:html.index("</section>", start)]


def test_the_holder_portal_says_what_was_shared_when_and_that_it_was_withdrawn(shared, make_staff, client):
    from django.utils.html import escape

    section = _section(_portal(client, shared.account))
    assert "Shared with the Frontier Model Forum (Frontier labs (all Forum members))" in section
    for kind in ("a pseudonym of your account", "excerpts of prompts sent from your account",
                 "fingerprints of the structure of prompts"):
        assert kind in section
    assert "Withdrawn</dt><dd>No</dd>" in section.replace("\n", "")

    appeal = _overturn(shared, make_staff)
    section = _section(client.get(reverse("appeals:home")).content.decode())
    assert escape(f"the decision about your account was reversed on appeal no. {appeal.pk}") in section
    assert "We told its members that what we had shared about your account is withdrawn." in section
    # No JavaScript involved: it is all in the page as served.
    assert "<script" not in section
    # The appeal's own page says so beside the outcome.
    page = client.get(reverse("appeals:appeal", args=[appeal.pk])).content.decode()
    assert "We have withdrawn it: its members are told that what we shared about your account no longer stands." \
        in page


def test_a_holder_nothing_was_shared_about_is_told_so(shared, detector, policy, make_staff, client):
    other = enforced_decision(detector, make_staff, policy["extraction"], account_id="acct_unshared",
                              email="unshared@example.com")
    section = _section(_portal(client, other.account))
    assert "We have not shared information about your account with the Frontier Model Forum" in section


def test_the_outcome_message_says_what_was_shared_was_withdrawn(shared, make_staff):
    appeal = _overturn(shared, make_staff)
    body = OutboxMessage.objects.get(kind="email", idempotency_key=f"appeal-outcome-{appeal.pk}").payload["body"]
    assert "we had shared information about your account with the Frontier Model Forum" in body
    assert "We have withdrawn it: its members are told that what we shared about your account no longer stands." \
        in body


def test_an_upheld_outcome_message_says_nothing_of_a_withdrawal(shared, make_staff):
    senior = make_staff(Role.SENIOR_REVIEWER, username="sven-senior")
    appeal = appeal_file(account=shared.account, decision=shared.holder.decision, grounds="No.")
    appeal_claim(reviewer=senior, appeal=appeal)
    appeal_decide(reviewer=senior, appeal=appeal, outcome="upheld", reason="It stands.")
    body = OutboxMessage.objects.get(kind="email", idempotency_key=f"appeal-outcome-{appeal.pk}").payload["body"]
    assert "withdrawn" not in body and "Frontier Model Forum" not in body
