"""The evidence-access log (issue 11; DESIGN.md invariant 2): who opened which account's evidence, when, in which
case and role; the openings outside the opener's own assigned cases; openings per person per week.

The journey is made with the real services (claims, the audited evidence reads, a decision, its second
approval, an appeal and its reviewer's evidence read); openings the product itself refuses (an ex-assignee
after a release or a take-over) are seeded as the trail would hold them had something let them through, which is
exactly what the outside view exists to show. Every expected row is worked out by hand below.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from appeals.services import appeal_claim, appeal_file
from flags.evidence import evidence_open
from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.services import SYSTEM, record
from reviewapp.cases.models import Case
from reviewapp.cases.services.claims import case_claim, case_claims_lapse, case_release
from reviewapp.cases.services.decisions import decision_approve, decision_record
from reviewapp.compliance.access.charts import weekly_strips
from reviewapp.compliance.access.selectors import (
    AccessFilters,
    openings_page,
    outside_count,
    weekly_counts,
)
from reviewapp.core.services import appeal_evidence_open
from reviewapp.people.roles import Role
from reviewapp.people.services import staff_set_role
from tests.factories import FlaggedCaseFactory

EXCERPTS = {"evidence": {"excerpts": ["Solve step by step: {problem}"]}}


def opened(user, case, context="case workspace"):
    """An evidence.opened event as the product writes it, for an opening the product would refuse today."""
    return record(actor=user, action=AuditAction.EVIDENCE_OPENED, target=case,
                  data={"flags": [], "context": context, "excerpts": 0})


def last_opening() -> AuditEvent:
    return AuditEvent.objects.filter(action=AuditAction.EVIDENCE_OPENED).latest("id")


@contextlib.contextmanager
def audit_clock(monkeypatch, when: datetime):
    """Events recorded inside are stamped ``when`` (the audit trail's clock only)."""
    import reviewapp.audit.services as audit_services

    class Clock:
        @staticmethod
        def now():
            return when

    with monkeypatch.context() as patch:
        patch.setattr(audit_services, "timezone", Clock)
        yield


@pytest.fixture
def journey(detector, policy, make_staff):
    """E1…E8, in this order (the letter after each says whether it was the opener's own assigned case):

    E1 rita (reviewer) claims case A, opens it ............................ own: assignee
    E2 cora (compliance officer) opens case A ............................. outside
    E3 rita releases A; an opening by rita of A is seeded ................. outside (claim released)
    E4 rita claims B, the claim lapses, rob claims B; rita's opening seeded  outside (lapsed, taken over)
    E5 rob opens B ......................................................... own: assignee
       rob decides B (suspend under T-2: second approval needed)
    E6 sid (senior) opens B while it awaits approval, never acts ........... outside
    E7 sam (senior) opens B, then approves the decision .................... own: approver
       the holder appeals; sue (reviewer, then made senior) is assigned it
    E8 sue opens B through the appeal ...................................... own: appeal reviewer
    Then cora is moved to admin: E2 still says compliance officer (the role at the time).
    """
    people = {name: make_staff(role, username=name) for name, role in (
        ("rita", Role.REVIEWER), ("rob", Role.REVIEWER), ("sam", Role.SENIOR_REVIEWER),
        ("sid", Role.SENIOR_REVIEWER), ("sue", Role.REVIEWER), ("cora", Role.COMPLIANCE_OFFICER),
        ("vera", Role.COMPLIANCE_OFFICER))}
    rita, rob, sam, sid, sue, cora = (people[n] for n in ("rita", "rob", "sam", "sid", "sue", "cora"))
    case_a = FlaggedCaseFactory(detector=detector, account_id="acct_a", flag=EXCERPTS)
    case_b = FlaggedCaseFactory(detector=detector, account_id="acct_b", flag=EXCERPTS,
                                contact_email="holder-b@example.org")
    events = {}
    case_claim(reviewer=rita, case=case_a)
    evidence_open(user=rita, case=case_a, context="case workspace")
    events["E1"] = last_opening()
    evidence_open(user=cora, case=case_a, context="case workspace")
    events["E2"] = last_opening()
    case_release(reviewer=rita, case=case_a)
    events["E3"] = opened(rita, case_a)
    case_claim(reviewer=rita, case=case_b)
    case_claims_lapse(now=Case.objects.get(pk=case_b.pk).lease_expires_at + timedelta(seconds=1))
    case_claim(reviewer=rob, case=case_b)
    events["E4"] = opened(rita, case_b)
    evidence_open(user=rob, case=case_b, context="case workspace")
    events["E5"] = last_opening()
    decision = decision_record(reviewer=rob, case=Case.objects.get(pk=case_b.pk), clauses=[policy["competing"]],
                               action="suspend", duration_days=30, rationale="Training a rival model.",
                               facts_for_holder="1,200 templated prompts.")
    evidence_open(user=sid, case=case_b, context="case workspace")
    events["E6"] = last_opening()
    evidence_open(user=sam, case=case_b, context="case workspace")
    events["E7"] = last_opening()
    decision = decision_approve(approver=sam, decision=decision)
    appeal = appeal_file(account=case_b.account, decision=decision, grounds="I am a researcher.")
    staff_set_role(actor=SYSTEM, user=sue, role=Role.SENIOR_REVIEWER)
    appeal = appeal_claim(reviewer=sue, appeal=appeal)
    appeal_evidence_open(reviewer=sue, appeal=appeal)
    events["E8"] = last_opening()
    staff_set_role(actor=SYSTEM, user=cora, role=Role.ADMIN)
    return {"people": people, "case_a": case_a, "case_b": case_b, "events": events, "appeal": appeal}


def ids(page, journey) -> list[str]:
    names = {event.pk: name for name, event in journey["events"].items()}
    return [names[row.pk] for row in page.openings]


@pytest.mark.django_db
def test_every_opening_with_account_case_role_and_whose_case_it_was(journey):
    page = openings_page(AccessFilters())
    assert ids(page, journey) == ["E8", "E7", "E6", "E5", "E4", "E3", "E2", "E1"]
    rows = {name: row for name, row in zip(ids(page, journey), page.openings, strict=True)}
    a, b = journey["case_a"].pk, journey["case_b"].pk
    assert [(n, rows[n].actor_display, rows[n].account, rows[n].case_pk, rows[n].role, rows[n].own_as)
            for n in rows] == [
        ("E8", "sue", "acct_b", b, "senior_reviewer", ["appeal reviewer"]),
        ("E7", "sam", "acct_b", b, "senior_reviewer", ["approver"]),
        ("E6", "sid", "acct_b", b, "senior_reviewer", []),
        ("E5", "rob", "acct_b", b, "reviewer", ["assignee"]),
        ("E4", "rita", "acct_b", b, "reviewer", []),
        ("E3", "rita", "acct_a", a, "reviewer", []),
        ("E2", "cora", "acct_a", a, "compliance_officer", []),  # admin now; compliance officer then
        ("E1", "rita", "acct_a", a, "reviewer", ["assignee"]),
    ]
    assert rows["E8"].data["context"] == f"appeal {journey['appeal'].pk}"
    assert not any(row.role_is_current for row in page.openings)


@pytest.mark.django_db
def test_outside_own_assigned_cases_are_the_four_worked_out(journey):
    page = openings_page(AccessFilters(outside_only=True))
    assert ids(page, journey) == ["E6", "E4", "E3", "E2"]
    assert outside_count(since=datetime(2000, 1, 1, tzinfo=UTC)) == 4


@pytest.mark.django_db
def test_filters_by_person_account_case_and_day(journey):
    people = journey["people"]
    assert ids(openings_page(AccessFilters(person=people["rita"].pk)), journey) == ["E4", "E3", "E1"]
    assert ids(openings_page(AccessFilters(person=people["rita"].pk, outside_only=True)), journey) == ["E4", "E3"]
    assert ids(openings_page(AccessFilters(account="acct_a")), journey) == ["E3", "E2", "E1"]
    assert ids(openings_page(AccessFilters(case=journey["case_b"].pk)), journey) == ["E8", "E7", "E6", "E5", "E4"]
    today = journey["events"]["E1"].created_at.astimezone(UTC).date()
    assert len(openings_page(AccessFilters(since=today, until=today)).openings) == 8
    assert openings_page(AccessFilters(since=today + timedelta(days=1))).openings == []
    assert openings_page(AccessFilters(until=today - timedelta(days=1))).openings == []


@pytest.mark.django_db
def test_keyset_pages_walk_every_opening_once(journey):
    seen, before = [], None
    while True:
        page = openings_page(AccessFilters(), before=before, size=3)
        seen += ids(page, journey)
        if page.next_before is None:
            break
        before = page.next_before
    assert seen == ["E8", "E7", "E6", "E5", "E4", "E3", "E2", "E1"]


def seed_openings(make_staff, detector, n: int):
    reader = make_staff(Role.COMPLIANCE_OFFICER)
    reviewer = make_staff(Role.REVIEWER)
    for i in range(n):
        case = FlaggedCaseFactory(detector=detector, account_id=f"acct_q{n}_{i}", flag=EXCERPTS)
        if i % 2:
            case_claim(reviewer=reviewer, case=case)
            evidence_open(user=reviewer, case=case, context="case workspace")
        else:
            evidence_open(user=reader, case=case, context="case workspace")


@pytest.mark.django_db
def test_a_page_costs_the_same_queries_for_3_or_12_openings(client, make_staff, detector):
    viewer = make_staff(Role.COMPLIANCE_OFFICER, username="viewer")
    client.force_login(viewer)
    counts = []
    for n in (3, 9):
        seed_openings(make_staff, detector, n)
        for name in ("compliance:evidence-access", "compliance:evidence-access-outside",
                     "compliance:evidence-access-weekly"):
            with CaptureQueriesContext(connection) as queries:
                assert client.get(reverse(name)).status_code == 200
            counts.append((name, len(queries)))
    assert counts[:3] == counts[3:]


# ── pages and API ───────────────────────────────────────────────────────────────────────────────────────────────

@pytest.mark.django_db
def test_pages_show_the_log_and_say_what_own_means(client, journey):
    client.force_login(journey["people"]["vera"])
    body = client.get(reverse("compliance:evidence-access"), {"account": "acct_a"}).content.decode()
    assert body.count("<tr>") == 1 + 3  # the header and E3, E2, E1
    assert "acct_a" in body and "compliance_officer" in body and "assignee" in body
    outside = client.get(reverse("compliance:evidence-access-outside")).content.decode()
    assert outside.count("<strong>outside</strong>") == 4
    assert "held the case&#x27;s claim" in outside or "held the case's claim" in outside
    assert "<form method=\"post\"" not in outside.split("<main")[1]  # a read: no form posts from the page


@pytest.mark.django_db
def test_bad_filters_say_which_field(client, journey):
    client.force_login(journey["people"]["vera"])
    response = client.get(reverse("compliance:evidence-access"), {"person": "nobody", "case": "x"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "Nobody has the username" in body and "Case number" in body
    api = client.get(reverse("evidence-access-api"), {"person": "nobody", "since": "2026-13-01"})
    assert api.status_code == 400 and set(api.json()) == {"person", "since"}


@pytest.mark.django_db
def test_only_compliance_reads_it(client, journey):
    client.force_login(journey["people"]["sam"])
    for name in ("compliance:evidence-access", "compliance:evidence-access-outside",
                 "compliance:evidence-access-weekly", "evidence-access-api", "evidence-access-outside-api",
                 "evidence-access-weekly-api"):
        assert client.get(reverse(name)).status_code == 403, name


@pytest.mark.django_db
def test_api_twins_answer_as_the_pages(client, journey):
    client.force_login(journey["people"]["vera"])
    answer = client.get(reverse("evidence-access-outside-api"), {"person": "rita"}).json()
    e4, e3 = journey["events"]["E4"], journey["events"]["E3"]
    assert [(r["event"], r["person"], r["account"], r["case"], r["role"], r["own_case_as"])
            for r in answer["results"]] == [
        (e4.pk, "rita", "acct_b", journey["case_b"].pk, "reviewer", []),
        (e3.pk, "rita", "acct_a", journey["case_a"].pk, "reviewer", []),
    ]
    assert answer["next"] is None and "claim" in answer["own_rule"]
    first = client.get(reverse("evidence-access-api")).json()["results"][0]
    assert first["own_case_as"] == ["appeal reviewer"] and first["context"].startswith("appeal ")


@pytest.mark.django_db
def test_the_schema_documents_the_twins(client, journey):
    client.force_login(journey["people"]["vera"])
    schema = client.get("/api/schema/?format=json").json()
    for path in ("/api/v1/compliance/evidence-access/", "/api/v1/compliance/evidence-access/outside/",
                 "/api/v1/compliance/evidence-access/weekly/"):
        operation = schema["paths"][path]["get"]
        assert set(operation["responses"]) >= {"200", "400", "403"}, path
        assert {p["name"] for p in operation["parameters"]} >= {"person", "since", "until"}


# ── per person per week ─────────────────────────────────────────────────────────────────────────────────────────

MONDAY = date(2026, 11, 2)


def at(week: int, day: int = 0, hour: int = 12) -> datetime:
    return datetime.combine(MONDAY + timedelta(weeks=week, days=day), datetime.min.time(), tzinfo=UTC) + \
        timedelta(hours=hour)


@pytest.fixture
def weeks_seeded(monkeypatch, detector, make_staff):
    """Three ISO weeks from Monday 2 November 2026 (UTC), worked out by hand:

    paula: week 0 — claims case P, opens it (own) on Monday, opens case Q (outside) on Sunday 23:00;
           week 1 — nothing; week 2 — opens Q (outside) on Monday 00:00 (the week's first instant).
    quinn: week 1 — opens P (outside: paula holds its claim).
    Counts: paula [2, 0, 1], outside [1, 0, 1]; quinn [0, 1, 0], outside [0, 1, 0].
    """
    paula, quinn = make_staff(Role.REVIEWER, username="paula"), make_staff(Role.COMPLIANCE_OFFICER, username="quinn")
    case_p = FlaggedCaseFactory(detector=detector, account_id="acct_p", flag=EXCERPTS)
    case_q = FlaggedCaseFactory(detector=detector, account_id="acct_q", flag=EXCERPTS)
    for when, actor, action, target in (
        (at(0, hour=9), paula, AuditAction.CASE_CLAIMED, case_p),
        (at(0, hour=10), paula, AuditAction.EVIDENCE_OPENED, case_p),
        (at(0, day=6, hour=23), paula, AuditAction.EVIDENCE_OPENED, case_q),
        (at(1, day=3), quinn, AuditAction.EVIDENCE_OPENED, case_p),
        (at(2, hour=0), paula, AuditAction.EVIDENCE_OPENED, case_q),
    ):
        with audit_clock(monkeypatch, when):
            record(actor=actor, action=action, target=target, data={"context": "case workspace"})
    return paula, quinn


@pytest.mark.django_db
def test_weekly_counts_per_person_worked_out_by_hand(weeks_seeded):
    data = weekly_counts(since=MONDAY + timedelta(days=2), until=MONDAY + timedelta(weeks=2, days=1))
    assert data.weeks == [MONDAY, MONDAY + timedelta(weeks=1), MONDAY + timedelta(weeks=2)]
    assert [(p.name, p.counts, p.outside, p.total, p.outside_total) for p in data.people] == [
        ("paula", [2, 0, 1], [1, 0, 1], 3, 2),
        ("quinn", [0, 1, 0], [0, 1, 0], 1, 1),
    ]
    only_week_1 = weekly_counts(since=MONDAY + timedelta(weeks=1), until=MONDAY + timedelta(weeks=1, days=6))
    assert [(p.name, p.counts) for p in only_week_1.people] == [("quinn", [1])]
    assert [p.name for p in weekly_counts(since=MONDAY, until=MONDAY + timedelta(weeks=2),
                                          person=weeks_seeded[0].pk).people] == ["paula"]


@pytest.mark.django_db
def test_weekly_chart_is_svg_with_a_table_behind_it(client, weeks_seeded, make_staff):
    chart = weekly_strips(weekly_counts(since=MONDAY, until=MONDAY + timedelta(weeks=2)))
    paula = chart["rows"][0]
    # One scale: paula's 2 in week 0 is the tallest bar (24 px), her 1 in week 2 half of it.
    assert [bar["h"] for bar in paula["bars"]] == [24.0, 0.0, 12.0]
    assert [bar["oh"] for bar in paula["bars"]] == [12.0, 0.0, 12.0]
    client.force_login(make_staff(Role.COMPLIANCE_OFFICER))
    body = client.get(reverse("compliance:evidence-access-weekly"),
                      {"since": "2026-11-02", "until": "2026-11-16"}).content.decode()
    assert "<svg" in body and "paula: 3 openings, 2 outside own cases." in body
    assert "<td>2 (1)</td><td>0</td><td>1 (1)</td><td>3 (2)</td>" in body
    api = client.get(reverse("evidence-access-weekly-api"), {"since": "2026-11-02", "until": "2026-11-16"}).json()
    assert api["weeks"] == ["2026-11-02", "2026-11-09", "2026-11-16"]
    assert [(p["person"], p["counts"], p["outside"]) for p in api["people"]] == [
        ("paula", [2, 0, 1], [1, 0, 1]), ("quinn", [0, 1, 0], [0, 1, 0])]


@pytest.mark.django_db
def test_home_panel_counts_this_weeks_openings_outside(client, journey, monkeypatch):
    client.force_login(journey["people"]["vera"])
    body = client.get(reverse("compliance:home")).content.decode()
    assert "<strong>4</strong> openings of raw evidence outside" in body
