"""The Forum's staff pages: the proposal form (items shown with what they contain, excerpts unticked), the
officer's preview beside the exact JSON and hash, four-eyes approval by the previewed hash, reject and withdraw
confirming first, the register for compliance (read-only), the inbound page, 404 for what one may not know."""

from __future__ import annotations

import html

import pytest
from django.test import Client
from django.urls import reverse

from flags.models import Flag
from reviewapp.forum import services
from reviewapp.forum.content import ShareChoice
from reviewapp.forum.models import ForumPush, InboundMatch, InboundObject, ShareProposal, ShareState
from reviewapp.forum.previews import share_preview

from .conftest import FRONTIER

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _proposal(world, people, **choice):
    _account, case = world.account()
    return services.share_propose(proposer=people["reviewer"], source=case, collection_id=FRONTIER,
                                  choice=ShareChoice(**choice)), case


def test_the_proposal_form_shows_each_item_and_leaves_excerpts_unticked(world, sharing_people):
    account, case = world.account(flags=[{"excerpts": ["Solve step by step: {problem}", "mail bob@example.org"]}])
    client = _client(sharing_people["reviewer"])
    assert f'href="/forum/propose/case/{case.pk}/"' in client.get(reverse("review:case", args=[case.pk])).text
    page = client.get(reverse("forum:propose", args=["case", case.pk]))
    assert page.status_code == 200
    text = page.text
    assert "Solve step by step: {problem}" in text and "mail [redacted]" in text and "bob@example.org" not in text
    excerpt_boxes = [line for line in text.splitlines() if 'name="excerpts"' in line]
    assert excerpt_boxes and not any("checked" in line for line in excerpt_boxes)
    assert '<option value="amber+strict" selected>' in text
    flag = Flag.objects.get(account_external_id=account.external_id)
    # Excerpts with TLP:GREEN are refused, naming the field; nothing is proposed.
    refused = client.post(reverse("forum:propose", args=["case", case.pk]), {
        "campaign_summary": "on", "excerpts": [f"{flag.pk}:0"], "tlp": "green", "collection_id": FRONTIER})
    assert refused.status_code == 422 and "TLP:AMBER, TLP:AMBER+STRICT or TLP:RED" in refused.text
    assert not ShareProposal.objects.exists()
    made = client.post(reverse("forum:propose", args=["case", case.pk]), {
        "campaign_summary": "on", "excerpts": [f"{flag.pk}:0"], "tlp": "amber+strict", "collection_id": FRONTIER})
    proposal = ShareProposal.objects.get()
    assert made.status_code == 302 and made["Location"] == reverse("forum:share", args=[proposal.pk])
    items = {(i.kind, i.key) for i in proposal.versions.get().items.all()}
    assert items == {("campaign_summary", ""), ("excerpt", f"{flag.pk}:0")}  # volume unticked stays out


def test_an_undecided_case_cannot_be_proposed_and_an_officer_has_no_form(world, sharing_people):
    _account, case = world.account(decided=False)
    page = _client(sharing_people["reviewer"]).get(reverse("forum:propose", args=["case", case.pk]))
    assert page.status_code == 422 and "is not decided" in page.text
    assert _client(sharing_people["officer"]).get(reverse("forum:propose", args=["case", case.pk])).status_code == 404


def test_preview_beside_the_json_and_hash_then_approval_by_another_officer(world, sharing_people):
    proposal, _case = _proposal(world, sharing_people)
    expected = share_preview(user=sharing_people["officer"], proposal=proposal)
    proposer = _client(sharing_people["reviewer"])
    own = proposer.get(reverse("forum:share", args=[proposal.pk])).text
    assert expected.sha256 in own and "another sharing officer approves it" in own and "forum:approve" not in own
    assert reverse("forum:approve", args=[proposal.pk]) not in own
    officer = _client(sharing_people["officer"])
    page = html.unescape(officer.get(reverse("forum:share", args=[proposal.pk])).text)
    assert expected.what_leaves in page and expected.sha256 in page
    assert '"type": "bundle"' in page  # the exact bundle JSON, beside the line
    # A stale hash is refused, naming it; the right one approves and queues the push.
    stale = officer.post(reverse("forum:approve", args=[proposal.pk]), {"version": 1, "bundle_sha256": "0" * 64})
    assert stale.status_code == 422 and "no longer the one you previewed" in stale.text
    done = officer.post(reverse("forum:approve", args=[proposal.pk]),
                        {"version": 1, "bundle_sha256": expected.sha256})
    assert done.status_code == 302
    proposal.refresh_from_db()
    assert proposal.state == ShareState.APPROVED and proposal.decided_by == sharing_people["officer"]
    assert ForumPush.objects.get(proposal=proposal).state == "pending"
    assert "Pending" in officer.get(reverse("forum:shares")).text


def test_reject_asks_to_confirm_first_and_is_styled_as_destructive(world, sharing_people):
    proposal, _ = _proposal(world, sharing_people)
    officer = _client(sharing_people["officer"])
    asked = officer.post(reverse("forum:reject", args=[proposal.pk]), {"reason": "Too broad."})
    assert asked.status_code == 200 and 'class="button-danger"' in asked.text and 'name="confirm"' in asked.text
    proposal.refresh_from_db()
    assert proposal.state == ShareState.AWAITING_APPROVAL
    officer.post(reverse("forum:reject", args=[proposal.pk]), {"reason": "Too broad.", "confirm": "1"})
    proposal.refresh_from_db()
    assert proposal.state == ShareState.REJECTED and proposal.rejection_reason == "Too broad."
    empty = officer.post(reverse("forum:reject", args=[proposal.pk]), {"reason": ""})
    assert empty.status_code == 422


def test_narrow_makes_a_new_version_with_a_new_preview(world, sharing_people):
    proposal, _ = _proposal(world, sharing_people)
    officer = _client(sharing_people["officer"])
    answer = officer.post(reverse("forum:narrow", args=[proposal.pk]),
                          {"campaign_summary": "on", "reason": "No volume."})
    assert answer.status_code == 302
    proposal.refresh_from_db()
    assert proposal.current_version == 2
    page = officer.get(reverse("forum:share", args=[proposal.pk])).text
    assert "Preview of version 2" in page and "No volume." in page


def test_a_researcher_account_is_included_one_by_one_with_a_reason(world, sharing_people):
    campaign, _accounts = world.campaign(3)
    researcher, _ = world.account(campaign=campaign, researcher=True)
    proposal = services.share_propose(proposer=sharing_people["reviewer"], source=campaign, collection_id=FRONTIER,
                                      choice=ShareChoice())
    officer = _client(sharing_people["officer"])
    assert f"Include {researcher.external_id}" in officer.get(reverse("forum:share", args=[proposal.pk])).text
    officer.post(reverse("forum:include", args=[proposal.pk]), {"account": researcher.pk, "reason": "Not research."})
    version = proposal.versions.get(number=2)
    row = version.accounts.get(account=researcher)
    assert row.excluded == "" and row.override_reason == "Not research."


def test_withdraw_confirms_then_the_page_says_withdrawn(world, sharing_people):
    proposal, _ = _proposal(world, sharing_people)
    officer = _client(sharing_people["officer"])
    asked = officer.post(reverse("forum:withdraw", args=[proposal.pk]), {"reason": "Wrong cluster."})
    assert 'class="button-danger"' in asked.text
    proposal.refresh_from_db()
    assert proposal.state == ShareState.AWAITING_APPROVAL
    officer.post(reverse("forum:withdraw", args=[proposal.pk]), {"reason": "Wrong cluster.", "confirm": "1"})
    page = officer.get(reverse("forum:share", args=[proposal.pk])).text
    assert 'id="withdrawn"' in page and "Wrong cluster." in page


def test_who_may_see_what(world, sharing_people, make_staff):
    proposal, _ = _proposal(world, sharing_people)
    share = reverse("forum:share", args=[proposal.pk])
    other_reviewer = _client(make_staff())
    assert other_reviewer.get(share).status_code == 404  # a share one did not propose does not exist for one
    assert other_reviewer.get(reverse("forum:share", args=[999_999])).status_code == 404
    assert f"Share {proposal.pk}<" not in other_reviewer.get(reverse("forum:shares")).text  # not listed either
    assert f"Share {proposal.pk}<" in _client(sharing_people["reviewer"]).get(reverse("forum:shares")).text
    assert other_reviewer.get(reverse("forum:register")).status_code == 404
    assert other_reviewer.get(reverse("forum:inbound")).status_code == 404
    compliance = _client(sharing_people["compliance"])
    assert compliance.get(share).status_code == 200
    assert "forum:approve" not in compliance.get(share).text
    assert reverse("forum:approve", args=[proposal.pk]) not in compliance.get(share).text
    assert compliance.post(reverse("forum:reject", args=[proposal.pk]), {"reason": "x", "confirm": "1"}
                           ).status_code == 403
    assert compliance.get(reverse("forum:register")).status_code == 200
    assert compliance.get(reverse("forum:inbound")).status_code == 200  # reads it; feedback is the officers'
    proposer = _client(sharing_people["reviewer"])
    assert proposer.post(reverse("forum:approve", args=[proposal.pk]),
                         {"version": 1, "bundle_sha256": "0" * 64}).status_code == 403


def test_the_register_lists_what_left_for_compliance(world, sharing_people):
    proposal, _ = _proposal(world, sharing_people)
    preview = share_preview(user=sharing_people["officer"], proposal=proposal)
    services.share_approve(officer=sharing_people["officer"], proposal=proposal, version_number=1,
                           bundle_sha256=preview.sha256)
    page = _client(sharing_people["compliance"]).get(reverse("forum:register")).text
    assert preview.sha256 in page and FRONTIER in page and "rita-reviewer" in page and "otto-officer" in page


def test_inbound_page_hides_red_content_and_sends_feedback(world, sharing_people, settings):
    from django.utils import timezone

    account, _ = world.account()
    amber = InboundObject.objects.create(stix_id="indicator--1b1f5a2c-7a38-4a3f-9e3a-1c6a7d0e9b11",
                                         modified="2026-11-20T00:00:00.000Z", stix_type="indicator",
                                         collection_id=FRONTIER, tlp="amber", body={"name": "amber secret pattern"},
                                         received_at=timezone.now())
    InboundObject.objects.create(stix_id="indicator--2b1f5a2c-7a38-4a3f-9e3a-1c6a7d0e9b12",
                                 modified="2026-11-20T00:00:00.000Z", stix_type="indicator", collection_id=FRONTIER,
                                 tlp="red", body={"name": "red secret pattern"}, received_at=timezone.now())
    InboundMatch.objects.create(stix_id=amber.stix_id, inbound=amber, collection_id=FRONTIER, account=account,
                                kind="fingerprint", distance=2, flag_external_id="forum-x", matched_at=timezone.now())
    officer = _client(sharing_people["officer"])
    page = officer.get(reverse("forum:inbound")).text
    assert "amber secret pattern" in page and "red secret pattern" not in page and "distance 2" in page
    assert "False positive: a researcher" in page
    officer.post(reverse("forum:feedback", args=[amber.pk]), {"verdict": "false_positive_researcher"})
    push = ForumPush.objects.get(purpose="feedback")
    assert account.external_id not in str(push.bundle)


def test_extension_definitions_are_served_out_of_band(client):
    answer = client.get(reverse("forum:extensions"))
    assert answer.status_code == 200
    assert {o["type"] for o in answer.json()["objects"]} == {"extension-definition"}


def test_a_compliance_officer_reads_inbound_intelligence_and_its_matches_but_gives_no_feedback(world, sharing_people):
    from django.utils import timezone

    account, _ = world.account()
    amber = InboundObject.objects.create(stix_id="indicator--3b1f5a2c-7a38-4a3f-9e3a-1c6a7d0e9b13",
                                         modified="2026-11-20T00:00:00.000Z", stix_type="indicator",
                                         collection_id=FRONTIER, tlp="amber", body={"name": "amber shared pattern"},
                                         received_at=timezone.now())
    InboundMatch.objects.create(stix_id=amber.stix_id, inbound=amber, collection_id=FRONTIER, account=account,
                                kind="fingerprint", distance=3, flag_external_id="forum-y", matched_at=timezone.now())
    compliance = _client(sharing_people["compliance"])
    page = compliance.get(reverse("forum:inbound")).text
    assert "amber shared pattern" in page and "distance 3" in page
    assert "Sharing officers give feedback." in page and reverse("forum:feedback", args=[amber.pk]) not in page
    assert account.external_id in compliance.get(reverse("forum:matches")).text
    assert compliance.get("/api/v1/forum/inbound/").json()["results"][0]["stix_id"] == amber.stix_id
    assert compliance.get(f"/api/v1/forum/inbound/{amber.pk}/").status_code == 200
    assert compliance.get("/api/v1/forum/matches/").json()["results"][0]["stix_id"] == amber.stix_id
    refused = compliance.post(reverse("forum:feedback", args=[amber.pk]), {"verdict": "confirmed"})
    assert refused.status_code == 404
    api_refused = compliance.post(f"/api/v1/forum/inbound/{amber.pk}/feedback/", {"verdict": "confirmed"},
                                  content_type="application/json")
    assert api_refused.status_code == 403
    assert not ForumPush.objects.filter(purpose="feedback").exists()
    assert 'href="/forum/inbound/">Forum inbound</a>' in compliance.get(reverse("core:home")).text

