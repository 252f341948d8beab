"""The decision register (issue 11): each filter finds exactly its decisions, a bad value is a 400 naming the
field, pages go by decision id, and a page costs the same number of queries however many decisions it shows.

The decisions are made with the real review services (flags through ingestion and grouping, claims, decisions,
approvals, appeals); their dates are then moved in the database to test the date range."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from appeals.services import appeal_claim, appeal_decide, appeal_file
from reviewapp.cases.models import Decision
from reviewapp.cases.services.claims import case_claim
from reviewapp.cases.services.decisions import decision_approve, decision_record
from reviewapp.compliance.records import selectors
from reviewapp.people.roles import Role
from tests.factories import DetectorFactory, FlaggedCaseFactory

pytestmark = pytest.mark.django_db

FACTS = "Your account sent 1,200 prompts filled from one template."


@pytest.fixture
def register(policy, make_staff, settings, tmp_path):
    settings.APPEAL_ATTACHMENTS_DIR = tmp_path / "attachments"
    rhea, ravi = make_staff(Role.REVIEWER, username="rhea"), make_staff(Role.REVIEWER, username="ravi")
    ava, sven = make_staff(Role.SENIOR_REVIEWER, username="ava"), make_staff(Role.SENIOR_REVIEWER, username="sven")
    miner, prober = DetectorFactory(slug="template-miner"), DetectorFactory(slug="prober")

    def decide(account, detector, reviewer, clause, action, *, approver=None, day=1):
        case = FlaggedCaseFactory(detector=detector, account_id=account)
        case_claim(reviewer=reviewer, case=case)
        decision = decision_record(reviewer=reviewer, case=case, clauses=[policy[clause]], action=action,
                                   duration_days=30 if action == "suspend" else None, rationale="Reviewed.",
                                   facts_for_holder=FACTS if action != "no_violation" else "")
        if approver:
            decision = decision_approve(approver=approver, decision=decision)
        Decision.objects.filter(pk=decision.pk).update(decided_at=datetime(2026, 11, day, 12, tzinfo=UTC))
        return Decision.objects.get(pk=decision.pk)

    made = {
        "warned": decide("acct_w", miner, rhea, "extraction", "warn", day=1),
        "suspended": decide("acct_s", miner, ravi, "extraction", "suspend", day=10),
        "terminated": decide("acct_t", prober, rhea, "competing", "terminate", approver=ava, day=20),
        "cleared": decide("acct_c", prober, ravi, "research", "no_violation", day=30),
    }
    upheld = appeal_file(account=made["suspended"].account, decision=made["suspended"], grounds="Not us.")
    appeal_claim(reviewer=sven, appeal=upheld)
    appeal_decide(reviewer=sven, appeal=upheld, outcome="upheld", reason="The numbers stand.")
    appeal_file(account=made["terminated"].account, decision=made["terminated"], grounds="A lab.")
    return made


def _listed(client, **query) -> list[int]:
    page = client.get(reverse("compliance:decisions"), query)
    assert page.status_code == 200, page.content.decode()[:500]
    return [int(pk) for pk in re.findall(r'href="/compliance/decisions/(\d+)/"', page.content.decode())]


@pytest.mark.parametrize(("query", "expected"), [
    ({}, ["cleared", "terminated", "suspended", "warned"]),
    ({"clause": "T-1"}, ["suspended", "warned"]),
    ({"clause": "t-2"}, ["terminated"]),  # the reference as typed, any case
    ({"action": "terminate"}, ["terminated"]),
    ({"state": "no_action"}, ["cleared"]),
    ({"reviewer": "rhea"}, ["terminated", "warned"]),
    ({"approver": "ava"}, ["terminated"]),
    ({"detector": "prober"}, ["cleared", "terminated"]),
    ({"appeal": "none"}, ["cleared", "warned"]),
    ({"appeal": "pending"}, ["terminated"]),
    ({"appeal": "upheld"}, ["suspended"]),
    ({"appeal": "overturned"}, []),
    ({"decided_from": "2026-11-10", "decided_to": "2026-11-20"}, ["terminated", "suspended"]),  # both inclusive
    ({"decided_from": "2026-11-11"}, ["cleared", "terminated"]),
    ({"detector": "template-miner", "reviewer": "ravi"}, ["suspended"]),
])
def test_each_filter_finds_exactly_its_decisions(register, client, make_staff, query, expected):
    client.force_login(make_staff(Role.COMPLIANCE_OFFICER))
    assert _listed(client, **query) == [register[name].pk for name in expected]


@pytest.mark.parametrize(("query", "named"), [
    ({"action": "obliterate"}, "action"),
    ({"reviewer": "nobody-by-that-name"}, "reviewer"),
    ({"detector": "no-such-detector"}, "detector"),
    ({"appeal": "maybe"}, "appeal"),
    ({"decided_from": "yesterday"}, "decided_from"),
    ({"decided_from": "2026-11-20", "decided_to": "2026-11-10"}, "decided_to"),
    ({"before": "x"}, "before"),
])
def test_a_bad_filter_is_a_400_naming_it(register, client, make_staff, query, named):
    client.force_login(make_staff(Role.COMPLIANCE_OFFICER))
    page = client.get(reverse("compliance:decisions"), query)
    assert page.status_code == 400
    assert re.search(rf"{named}: ", page.content.decode()), page.content.decode()[-800:]


def test_pages_go_by_decision_id_newest_first(register, client, make_staff, monkeypatch):
    monkeypatch.setattr(selectors, "PAGE_SIZE", 3)
    client.force_login(make_staff(Role.COMPLIANCE_OFFICER))
    ids = sorted((d.pk for d in register.values()), reverse=True)
    first = client.get(reverse("compliance:decisions")).content.decode()
    assert [int(pk) for pk in re.findall(r'href="/compliance/decisions/(\d+)/"', first)] == ids[:3]
    assert f"before={ids[2]}" in first
    assert _listed(client, before=ids[2]) == ids[3:]


def test_a_page_costs_the_same_queries_whatever_it_shows(register, client, make_staff):
    client.force_login(make_staff(Role.COMPLIANCE_OFFICER))
    with CaptureQueriesContext(connection) as one:
        assert len(_listed(client, action="warn")) == 1
    with CaptureQueriesContext(connection) as four:
        assert len(_listed(client)) == 4
    assert len(four.captured_queries) == len(one.captured_queries)


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.SENIOR_REVIEWER, Role.SHARING_OFFICER])
def test_the_register_and_records_are_the_console_s(register, client, make_staff, role):
    client.force_login(make_staff(role))
    assert client.get(reverse("compliance:decisions")).status_code == 403
    assert client.get(reverse("compliance:decision", args=[register["warned"].pk])).status_code == 403


def test_a_record_that_does_not_exist_is_a_404(register, client, make_staff):
    client.force_login(make_staff(Role.COMPLIANCE_OFFICER))
    assert client.get(reverse("compliance:decision", args=[10**9])).status_code == 404


def test_a_record_costs_the_same_queries_whatever_the_case_holds(policy, make_staff, client, settings, tmp_path):
    """A decision's record is a fixed number of queries: one flag or twelve, an appeal with one message or four."""
    from appeals.services import appeal_message_add

    settings.APPEAL_ATTACHMENTS_DIR = tmp_path / "attachments"
    reviewer, senior = make_staff(Role.REVIEWER), make_staff(Role.SENIOR_REVIEWER)
    client.force_login(make_staff(Role.COMPLIANCE_OFFICER))

    def decided(account: str, flags: int) -> Decision:
        case = FlaggedCaseFactory(detector=DetectorFactory(slug="template-miner"), account_id=account, flags=flags)
        case_claim(reviewer=reviewer, case=case)
        return decision_record(reviewer=reviewer, case=case, clauses=[policy["extraction"]], action="warn",
                               duration_days=None, rationale="Reviewed.", facts_for_holder=FACTS)

    small, large = decided("acct_small", 1), decided("acct_large", 12)
    for decision, messages in ((small, ["One."]), (large, ["One.", "Two.", "Three.", "Four."])):
        appeal = appeal_file(account=decision.account, decision=decision, grounds="Not us.")
        for text in messages:
            appeal_message_add(appeal=appeal, text=text, holder=decision.account)
        appeal_claim(reviewer=senior, appeal=appeal)

    def queries(decision: Decision) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("compliance:decision", args=[decision.pk])).status_code == 200
        return len(captured.captured_queries)

    assert queries(large) == queries(small)
