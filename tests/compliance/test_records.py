"""The record of one decision end to end, and the history of a case, decision, appeal and share (issue 11).

One full journey built only with the real services — ingest → claim → evidence opened → decide → sent back →
decide again → approved (enforced, statement issued, the webhook and the notice delivered over real HTTP and
email) → shared with the Forum (a real medallion hub) → appeal with messages → overturned → withdrawal pushed
and read back — and then: the decision's record names every event of it, in order, each linked to its event;
the history filters name exactly what lies under each thing; the register's filters find it and leave others
out; the pages say so to a compliance officer and only to them.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from appeals.services import appeal_claim, appeal_decide, appeal_file, appeal_message_add
from flags.evidence import evidence_open
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.sequencer import sequence_pending
from reviewapp.cases.models import Decision
from reviewapp.cases.services import case_note_add
from reviewapp.cases.services.claims import case_claim
from reviewapp.cases.services.decisions import decision_approve, decision_record, decision_send_back
from reviewapp.compliance.records.history import Subject, UnknownSubject, history_events
from reviewapp.forum import services as forum
from reviewapp.forum.bundles import bundle_build
from reviewapp.forum.content import ShareChoice
from reviewapp.forum.models import ForumPush, ShareWithdrawal
from reviewapp.outbox.models import OutboxMessage
from reviewapp.people.roles import Role
from tests.factories import FlaggedCaseFactory
from tests.forum.conftest import FRONTIER, forum_hub, sharing_people  # noqa: F401 (fixtures)
from tests.support import deliver_outbox

pytestmark = pytest.mark.django_db(transaction=True)

FACTS = "Between 20 and 21 November your account sent 1,200 prompts filled from one template."
# Events of the journey that are not under the case: people and detectors being set up, the holder's profile.
NOT_UNDER_THE_CASE = {"staff.created", "detector.created", "account.profile_updated"}


def _deliver_everything():
    """Every outbox message, delivered in this process: the webhook to the receiver, emails, Forum posts (what a
    session worker of an earlier test took and failed against its own ports is taken back: deliver_outbox)."""
    deliver_outbox()
    assert not OutboxMessage.objects.exclude(state=OutboxMessage.State.DELIVERED).exists()


@pytest.fixture
def journey(policy, detector, make_staff, sharing_people, forum_hub, start_receiver, settings, tmp_path):  # noqa: F811
    settings.APPEAL_ATTACHMENTS_DIR = tmp_path / "attachments"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    receiver = start_receiver()
    settings.ENFORCEMENT_WEBHOOK_URL = f"http://127.0.0.1:{receiver.server_address[1]}/enforcement"
    decider = make_staff(Role.SENIOR_REVIEWER, username="dana")
    sender = make_staff(Role.SENIOR_REVIEWER, username="seth")
    approver = make_staff(Role.SENIOR_REVIEWER, username="ava")
    appeal_reviewer = make_staff(Role.SENIOR_REVIEWER, username="sven")

    case = FlaggedCaseFactory(detector=detector, account_id="acct_journey", contact_email="holder@example.org",
                              flag={"evidence": {"excerpts": ["Solve step by step: {problem}"]}})
    case_claim(reviewer=decider, case=case)
    evidence_open(user=decider, case=case, context="review")
    case_note_add(author=decider, case=case, text="Template share looks high; checking the cluster.")
    first = decision_record(reviewer=decider, case=case, clauses=[policy["competing"]], action="suspend",
                            duration_days=30, rationale="Templated prompts.", facts_for_holder=FACTS)
    decision_send_back(approver=sender, decision=first, reason="Cite the usage numbers.")
    second = decision_record(reviewer=decider, case=case, clauses=[policy["competing"]], action="suspend",
                             duration_days=30, rationale="Template share 94% across 1,200 prompts.",
                             facts_for_holder=FACTS)
    decision = decision_approve(approver=approver, decision=second)
    _deliver_everything()
    case.refresh_from_db()

    proposal = forum.share_propose(proposer=sharing_people["reviewer"], source=case,
                                   choice=ShareChoice(volume_stats=True),
                                   collection_id=FRONTIER)
    version = forum.current_version(proposal)
    forum.share_approve(officer=sharing_people["officer"], proposal=proposal, version_number=version.number,
                        bundle_sha256=bundle_build(version).sha256)
    _deliver_everything()

    appeal = appeal_file(account=decision.account, decision=decision, grounds="We are a registered lab.")
    appeal_message_add(appeal=appeal, text="Our programme letter is on its way.", holder=decision.account)
    appeal_claim(reviewer=appeal_reviewer, appeal=appeal)
    appeal_message_add(appeal=appeal, text="Thank you; we will read it.", staff=appeal_reviewer)
    appeal_decide(reviewer=appeal_reviewer, appeal=appeal, outcome="overturned", reason="A registered evaluation.")
    _deliver_everything()
    sequence_pending()
    decision.refresh_from_db()
    return {"case": case, "first": first, "decision": decision, "appeal": appeal, "proposal": proposal,
            "compliance": sharing_people["compliance"], "decider": decider, "approver": approver}


def _actions(events) -> list[str]:
    return [event.action for event in events]


def test_the_decision_record_holds_every_event_of_the_journey_in_order_each_linked(journey, client):
    decision = journey["decision"]
    assert decision.state == Decision.State.REVERSED
    withdrawal = ShareWithdrawal.objects.get(proposal=journey["proposal"], account=decision.account)
    assert ForumPush.objects.get(pk=withdrawal.push_id).state == ForumPush.State.SENT
    journey_events = list(AuditEvent.objects.exclude(action__in=NOT_UNDER_THE_CASE).order_by("seq"))
    for needed in ("flags.ingested", "flags.grouped", "case.opened", "case.claimed", "evidence.opened",
                   "case.note_added", "decision.recorded", "decision.sent_back", "decision.approved",
                   "decision.enforced", "statement.issued", "outbox.delivered", "share.proposed", "share.approved",
                   "share.pushed", "appeal.filed", "appeal.message", "appeal.claimed", "appeal.decided",
                   "decision.reversed", "share.objects_revoked"):
        assert needed in _actions(journey_events), needed

    client.force_login(journey["compliance"])
    page = client.get(reverse("compliance:decision", args=[decision.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    timeline = html[html.index('id="timeline-h"'):]
    # Every event of the journey is a line of the timeline, in the chain's order, linked to its event.
    linked = [int(pk) for pk in re.findall(r'<tr id="event-(\d+)">', timeline)]
    assert linked == [event.pk for event in journey_events]
    for event in journey_events:
        assert reverse("compliance:audit-event", args=[event.pk]) in timeline
    # The sections say what happened, with the clause's text as it was worded and each line's event.
    assert "Do not train competing models on outputs." in html
    assert "Template share 94% across 1,200 prompts." in html and FACTS in html
    assert "Sent back: Cite the usage numbers." in html and "Approved by ava" in html
    assert "Our programme letter is on its way." in html and "A registered evaluation." in html
    assert "Reversed on appeal" in html and withdrawal.reason in html
    approved = AuditEvent.objects.get(action="decision.approved", target_id=str(decision.pk))
    sections = html[: html.index('id="timeline-h"')]
    handling = sections[sections.index('id="handling-h"'): sections.index('id="decisions-h"')]
    opened = AuditEvent.objects.get(action="evidence.opened")
    claimed = AuditEvent.objects.get(action="case.claimed", target_type="cases.case")
    assert "dana · Raw evidence opened (review)" in handling and "dana · Case claimed" in handling
    for event in (opened, claimed):
        assert reverse("compliance:audit-event", args=[event.pk]) in handling
    assert reverse("compliance:audit-event", args=[approved.pk]) in sections
    # The webhook that applied the suspension (a second one lifted it on reversal): delivered, with its event.
    webhook = OutboxMessage.objects.filter(kind="enforcement", target_type="cases.decision",
                                           target_id=str(decision.pk)).order_by("pk").first()
    delivered = AuditEvent.objects.get(action="outbox.delivered", target_id=str(webhook.pk))
    assert reverse("compliance:audit-event", args=[delivered.pk]) in sections
    # Everything sent for the case — webhooks, the holder's emails, the Forum posts — with its delivery's event.
    deliveries = sections[sections.index('id="deliveries-h"'): sections.index('id="appeals-h"')]
    kinds = set()
    for message in OutboxMessage.objects.all():
        event = AuditEvent.objects.get(action="outbox.delivered", target_id=str(message.pk))
        assert reverse("compliance:audit-event", args=[event.pk]) in deliveries, message
        kinds.add(message.kind)
    assert {"enforcement", "email", "forum_push"} <= kinds
    # And the event links back to the record.
    event_page = client.get(reverse("compliance:audit-event", args=[approved.pk])).content.decode()
    assert reverse("compliance:decision", args=[decision.pk]) in event_page


def test_each_history_holds_what_lies_under_it_and_nothing_beside_it(journey, detector, make_staff):
    case, decision, first, appeal, proposal = (journey[k] for k in ("case", "decision", "first", "appeal", "proposal"))
    # A second, unrelated case of another account: none of its events may appear in the journey's histories.
    other = FlaggedCaseFactory(detector=detector, account_id="acct_bystander")
    case_claim(reviewer=make_staff(Role.REVIEWER), case=other)
    sequence_pending()
    bystander = set(history_events(Subject("cases.case", other.pk)).values_list("pk", flat=True))
    assert bystander

    case_history = set(history_events(Subject("cases.case", case.pk)).values_list("pk", flat=True))
    expected = set(AuditEvent.objects.exclude(action__in=NOT_UNDER_THE_CASE).exclude(pk__in=bystander)
                   .values_list("pk", flat=True))
    # flags.ingested of the bystander's batch is its own; the journey's batch is in the journey's history.
    assert case_history == expected
    assert not case_history & bystander

    decision_history = history_events(Subject("cases.decision", decision.pk))
    actions = set(_actions(decision_history))
    assert {"decision.recorded", "decision.approved", "statement.issued", "appeal.filed", "appeal.message",
            "appeal.decided", "decision.reversed", "share.objects_revoked", "outbox.delivered"} <= actions
    assert not {"case.claimed", "evidence.opened", "flags.grouped"} & actions  # those are the case's
    assert not decision_history.filter(target_type="cases.decision", target_id=str(first.pk)).exists()

    appeal_history = history_events(Subject("appeals.appeal", appeal.pk))
    assert {"appeal.filed", "appeal.message", "appeal.claimed", "appeal.decided"} <= set(_actions(appeal_history))
    # The withdrawal it caused is under it (its push and that push's delivery); the decision's approval is not.
    withdrawal = ShareWithdrawal.objects.get(proposal=proposal, account=decision.account)
    assert appeal_history.filter(target_type="forum.forumpush", target_id=str(withdrawal.push_id)).exists()
    assert not appeal_history.filter(action="decision.approved").exists()

    share_history = history_events(Subject("forum.shareproposal", proposal.pk))
    assert {"share.proposed", "share.approved", "share.pushed", "share.objects_revoked"} <= set(
        _actions(share_history))
    assert not share_history.filter(action__startswith="appeal.").exists()


def test_the_explorer_shows_a_history_and_names_a_bad_subject(journey, client):
    case = journey["case"]
    client.force_login(journey["compliance"])
    url = reverse("compliance:audit-events")
    page = client.get(url, {"within": f"cases.case:{case.pk}"})
    assert page.status_code == 200
    html = page.content.decode()
    assert f"History of Case {case.pk} in the audit trail" in html
    shown = set(int(pk) for pk in re.findall(r'href="/compliance/audit/(\d+)/"', html))
    newest = set(history_events(Subject("cases.case", case.pk)).order_by("-pk").values_list("pk", flat=True)[:50])
    assert shown == newest
    for bad, named in (("cases.account:1", "has no history here"), ("cases.case:x", "is not an id"),
                       ("cases.case", "is not an id")):
        answer = client.get(url, {"within": bad})
        assert answer.status_code == 400 and named in answer.content.decode(), bad
    with pytest.raises(UnknownSubject):
        Subject.parse("people.user:1")


def test_case_decision_appeal_and_share_pages_link_their_history_only_for_compliance(journey, client):
    case, decision, appeal, proposal = (journey[k] for k in ("case", "decision", "appeal", "proposal"))
    pages = {
        "cases.case": (reverse("review:case", args=[case.pk]), case.pk),
        "cases.decision": (reverse("compliance:decision", args=[decision.pk]), decision.pk),
        "appeals.appeal": (reverse("appeal-review:appeal", args=[appeal.pk]), appeal.pk),
        "forum.shareproposal": (reverse("forum:share", args=[proposal.pk]), proposal.pk),
    }
    client.force_login(journey["compliance"])
    for subject_type, (url, pk) in pages.items():
        html = client.get(url).content.decode()
        assert f"?within={subject_type}%3A{pk}" in html, url
    # A senior reviewer sees the case and the appeal, not a link into a trail they may not read.
    client.force_login(journey["approver"])
    for subject_type in ("cases.case", "appeals.appeal"):
        url, pk = pages[subject_type]
        answer = client.get(url)
        assert answer.status_code == 200 and "?within=" not in answer.content.decode(), url


def test_a_history_is_the_same_when_its_ids_are_too_many_to_list(journey, monkeypatch):
    """Past MAX_LISTED ids of a kind, the trail is asked with a subquery instead of a list: the same events."""
    from reviewapp.compliance.records import history

    subjects = [Subject("cases.case", journey["case"].pk), Subject("appeals.appeal", journey["appeal"].pk)]
    listed = [set(history_events(subject).values_list("pk", flat=True)) for subject in subjects]
    monkeypatch.setattr(history, "MAX_LISTED", 0)
    assert [set(history_events(subject).values_list("pk", flat=True)) for subject in subjects] == listed
    assert all(listed)
