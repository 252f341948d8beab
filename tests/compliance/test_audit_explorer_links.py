"""``links.target_url``: the page of each kind of audit target the apps record, checked against real rows."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from appeals.services import appeal_message_add
from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.services import SYSTEM, record
from reviewapp.cases.models import CaseNote
from reviewapp.compliance.links import (
    KNOWN_TYPES,
    chain_event_url,
    events_url,
    target_label,
    target_url,
    target_urls,
)
from reviewapp.forum.models import ForumPush, ShareProposal
from reviewapp.people.roles import Role
from tests.appeals.conftest import other_holder, portal_attachments  # noqa: F401 — fixtures
from tests.support import sequence_audit

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("target_type", "name"), [
    ("cases.case", "review:case"),
    ("cases.statementofreasons", "review:statement"),
    ("cases.campaign", "review:campaign"),
    ("appeals.appeal", "appeal-review:appeal"),
    ("forum.shareproposal", "forum:share"),
    ("compliance_verification.verificationrun", "compliance:verification"),
    ("compliance_quality.secondlooksample", "compliance:quality-sample"),
])
def test_a_target_with_a_page_of_its_own_links_to_it(target_type, name):
    assert target_url(target_type, "42") == reverse(name, args=[42])


def test_a_decision_links_to_its_record_in_the_console():
    try:
        expected = reverse("compliance:decision", args=[7])
    except NoReverseMatch:  # until the records area's page is in the URL conf: the decision's events
        expected = events_url("cases.decision", "7")
    assert target_url("cases.decision", "7") == expected


def test_a_page_missing_from_the_url_conf_falls_back_to_the_events(monkeypatch):
    from reviewapp.compliance import links

    monkeypatch.setitem(links._DIRECT, "cases.decision", "compliance:no-such-page")
    assert target_url("cases.decision", "7") == events_url("cases.decision", "7")


def test_a_type_not_known_here_yet_links_to_its_events():
    assert target_url("compliance_future.somerow", "3") == events_url("compliance_future.somerow", "3")


@pytest.mark.parametrize(("target_type", "url"), [
    ("flags.detector", "/detectors/#detector-3"),
    ("people.user", "/staff/"),
    ("forum.inboundrereview", "/forum/rereviews/"),
    ("forum.inboundmatch", "/forum/inbound/"),
    ("compliance_quality.calibrationalert", "/compliance/calibration/"),
])
def test_a_target_listed_on_a_page_links_to_that_page(target_type, url):
    assert target_url(target_type, "3") == url


@pytest.mark.parametrize("target_type", ["cases.account", "cases.holderlink", "flags.flag", "flags.flagbatch",
                                         "flags.flagsetaside", "flags.detectortoken", "outbox.outboxmessage",
                                         "forum_collection", "stix_object", "compliance_quality.secondlook"])
def test_a_target_without_a_page_links_to_its_events(target_type, client, make_staff):
    url = target_url(target_type, "collection-1" if target_type == "forum_collection" else "5")
    assert url == events_url(target_type, "collection-1" if target_type == "forum_collection" else "5")
    # …and that page lists exactly that target's events.
    client.force_login(make_staff(Role.COMPLIANCE_OFFICER))
    from reviewapp.audit.services import Target

    mine = record(actor=SYSTEM, action=AuditAction.STAFF_CREATED, target=Target(target_type, "5"))
    other = record(actor=SYSTEM, action=AuditAction.STAFF_CREATED, target=Target(target_type, "6"))
    page = client.get(events_url(target_type, "5")).content.decode()
    assert reverse("compliance:audit-event", args=[mine.pk]) + '"' in page
    assert reverse("compliance:audit-event", args=[other.pk]) + '"' not in page


def test_targets_found_through_another_row(policy, other_holder, make_staff):  # noqa: F811 — a fixture
    version = policy["extraction"].version
    assert target_url("policy.policyversion", str(version.pk)) == reverse(
        "policy:version", kwargs={"slug": version.policy.slug, "number": version.number})

    appeal = other_holder.appeal
    message = appeal_message_add(appeal=appeal, holder=appeal.account, text="Any news?")
    assert target_url("appeals.appealmessage", str(message.pk)) == reverse("appeal-review:appeal", args=[appeal.pk])
    # An attachment links to its appeal, not to the file: opening that is audited evidence access.
    assert target_url("appeals.appealattachment", str(other_holder.attachment.pk)) == reverse(
        "appeal-review:appeal", args=[appeal.pk])

    case = other_holder.decision.case
    note = CaseNote.objects.create(case=case, author=make_staff(Role.REVIEWER), text="Looks templated.")
    assert target_url("cases.casenote", str(note.pk)) == reverse("review:case", args=[case.pk])

    proposal = ShareProposal.objects.create(source="case", case=case, proposed_by=make_staff(Role.REVIEWER),
                                            proposed_at=timezone.now())
    push = ForumPush.objects.create(proposal=proposal, collection_id="c", bundle_sha256="0" * 64,
                                    created_at=timezone.now())
    feedback = ForumPush.objects.create(purpose=ForumPush.Purpose.FEEDBACK, collection_id="c",
                                        bundle_sha256="1" * 64, created_at=timezone.now())
    assert target_url("forum.forumpush", str(push.pk)) == reverse("forum:share", args=[proposal.pk])
    assert target_url("forum.forumpush", str(feedback.pk)) is None  # feedback belongs to no share

    record(actor=SYSTEM, action=AuditAction.STAFF_CREATED)
    sequence_audit()
    signed = AuditEvent.objects.order_by("-seq").first()
    # An audit.checkpoint target is the seq of the head it signed: that event.
    assert target_url("audit.checkpoint", str(signed.seq)) == reverse("compliance:audit-event", args=[signed.pk])
    assert chain_event_url(signed.seq) == reverse("compliance:audit-event", args=[signed.pk])
    assert chain_event_url(signed.seq + 1000) is None
    # Rows that do not exist have no page.
    for target_type in ("policy.policyversion", "appeals.appealmessage", "cases.casenote", "forum.forumpush"):
        assert target_url(target_type, "999999") is None


def test_every_target_type_the_apps_record_is_known():
    """The types ``record`` calls write today (a model's label, or a Target spelled out); a new one must be added."""
    recorded = {"cases.case", "cases.decision", "cases.account", "cases.campaign", "cases.statementofreasons",
                "cases.casenote", "cases.holderlink", "appeals.appeal", "appeals.appealattachment",
                "appeals.appealmessage", "flags.detector", "flags.detectortoken", "flags.flagbatch",
                "flags.flagsetaside", "forum.shareproposal", "forum.forumpush", "forum.inboundmatch",
                "forum.inboundrereview", "forum_collection", "stix_object", "outbox.outboxmessage",
                "policy.policyversion", "people.user", "audit.checkpoint",
                "compliance_verification.verificationrun", "compliance_quality.secondlooksample",
                "compliance_quality.secondlook", "compliance_quality.calibrationalert"}
    assert recorded <= KNOWN_TYPES


@pytest.mark.parametrize(("target_type", "target_id"), [
    ("", ""), ("cases.case", ""), ("cases.case", "acct_9"), ("cases.case", "-1"), ("cases.case", "1" * 40),
    ("no.such", ""), ("cases.decision", "١٢"),  # Arabic-Indic digits are digits to str.isdigit, not to a URL
])
def test_no_link_for_what_cannot_be_a_target(target_type, target_id):
    assert target_url(target_type, target_id) is None


def test_many_targets_resolve_in_one_query_per_kind_that_needs_a_lookup(policy):
    pairs = [("policy.policyversion", str(i)) for i in range(200)] + [("cases.case", str(i)) for i in range(200)]
    pairs += [("audit.checkpoint", str(i)) for i in range(200)]
    with CaptureQueriesContext(connection) as captured:
        urls = target_urls(pairs)
    assert len(captured) == 2
    assert urls[("cases.case", "5")] == reverse("review:case", args=[5])


def test_targets_read_as_nouns():
    assert target_label("cases.decision", "7") == "Decision 7"
    assert target_label("audit.checkpoint", "12") == "Event in the chain #12"
    assert target_label("x.unknown", "3") == "x.unknown 3"
    assert [t for t in KNOWN_TYPES if target_label(t, "1").startswith(t)] == []  # every known type has its noun
