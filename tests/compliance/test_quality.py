"""Quality: a second look. Samples (strata, seed, audit), the blind second review, invariant 5, agreement by hand.

Every row comes through the real services (ingestion and grouping, claims, decisions, approvals).
"""

from __future__ import annotations

import hashlib
import json

import pytest
from django.urls import reverse

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.cases.models import Decision
from reviewapp.cases.services.decisions import decision_approve
from reviewapp.compliance.quality.models import SecondLook, SecondLookSample
from reviewapp.compliance.quality.selectors import agreement_by_clause, agreement_by_reviewer, agreement_overall
from reviewapp.compliance.quality.services import sample_draw, second_look_record
from reviewapp.people.roles import Role
from tests.appeals.review_fixtures import decide
from tests.factories import DetectorFactory, FlaggedCaseFactory

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"
SECRET_RATIONALE = "Rationale-only-the-first-reviewer-wrote-7f3a"
SECRET_FACTS = "Between 20 and 21 November your account sent 1,200 prompts filled from one template."


def _case(account: str, *, evidence: bool = False):
    flag = {"evidence": {"excerpts": [f"Solve step by step: {{problem}} ({account})"]}} if evidence else {}
    return FlaggedCaseFactory(detector=DetectorFactory(slug="miner"), account_id=account,
                              contact_email=f"{account}@example.org", flag=flag)


@pytest.fixture
def staff(make_staff):
    return {
        "ana": make_staff(Role.REVIEWER, username="ana"), "ben": make_staff(Role.REVIEWER, username="ben"),
        "decider": make_staff(Role.SENIOR_REVIEWER, username="dora-decider"),
        "approver": make_staff(Role.SENIOR_REVIEWER, username="abe-approver"),
        "senior": make_staff(Role.SENIOR_REVIEWER, username="sam-senior"),
        "compliance": make_staff(Role.COMPLIANCE_OFFICER, username="cora"),
    }


@pytest.fixture
def decided(policy, staff):
    """Decisions by reviewer and clause: ana 3 under T-1 (warn), ben 2 under T-3 (warn) and 1 under T-1+T-3
    (no violation); dora a T-2 suspension that abe approved."""
    t1, t2, t3 = policy["extraction"], policy["competing"], policy["research"]
    made = {}
    for i in range(3):
        made[f"ana{i}"] = decide(_case(f"ana{i}"), reviewer=staff["ana"], clauses=[t1], action="warn",
                                 duration_days=None)
    for i in range(2):
        made[f"ben{i}"] = decide(_case(f"ben{i}"), reviewer=staff["ben"], clauses=[t3], action="warn",
                                 duration_days=None)
    made["ben2"] = decide(_case("ben2"), reviewer=staff["ben"], clauses=[t1, t3], action="no_violation",
                          duration_days=None)
    severe = decide(_case("dora0", evidence=True), reviewer=staff["decider"], clauses=[t2], action="suspend",
                    duration_days=30, rationale=SECRET_RATIONALE)
    made["dora0"] = decision_approve(approver=staff["approver"], decision=severe)
    assert made["dora0"].state == Decision.State.ENFORCED
    return made


def _rank(seed: int, pk: int) -> tuple[str, int]:
    return hashlib.md5(f"{seed}:{pk}".encode()).hexdigest(), pk  # noqa: S324 - the draw's order, not a secret


def test_draw_by_clause_respects_strata_and_is_the_seeded_draw(decided, staff):
    seed = 12345
    sample = sample_draw(actor=staff["compliance"], per_stratum=2, strata="clause", seed=seed)
    # Strata by the set of clauses cited: T-1 (ana0-2: 3), T-3 (ben0-1: 2), T-1+T-3 (ben2: 1), T-2 (dora0: 1).
    # Two per stratum: T-1 gives 2 of its 3, the others all they have: 2 + 2 + 1 + 1 = 6 of 7.
    looks = {look.decision_id: look.stratum for look in sample.second_looks.all()}
    by_stratum: dict[str, list[int]] = {}
    for pk, stratum in looks.items():
        by_stratum.setdefault(stratum, []).append(pk)
    assert {k: len(v) for k, v in by_stratum.items()} == {"T-1": 2, "T-3": 2, "T-1+T-3": 1, "T-2": 1}
    assert sample.population == 7
    # Which two of T-1: the two whose md5("<seed>:<id>") is smallest, computed here independently of the SQL.
    t1_ids = [decided[f"ana{i}"].pk for i in range(3)]
    assert sorted(by_stratum["T-1"]) == sorted(sorted(t1_ids, key=lambda pk: _rank(seed, pk))[:2])

    # Audited with every parameter and the decisions drawn.
    (event,) = AuditEvent.objects.filter(action=AuditAction.COMPLIANCE_SAMPLE_DRAWN)
    assert event.target_id == str(sample.pk) and event.actor_id == str(staff["compliance"].pk)
    assert event.data["seed"] == seed and event.data["strata"] == "clause" and event.data["per_stratum"] == 2
    assert sorted(event.data["decisions"]) == sorted(looks)
    assert event.data["strata_counts"] == {"T-1": 2, "T-3": 2, "T-1+T-3": 1, "T-2": 1}


def test_a_draw_without_a_seed_records_one_the_chain_can_hash(decided, staff):
    """The seed chosen for the officer goes into the audit event: it must fit RFC 8785's integers (±2^53)."""
    from reviewapp.compliance.quality.services import MAX_SEED
    from tests.support import sequence_audit

    for _ in range(20):  # a seed drawn below 2^63 would exceed 2^53 all but once in a thousand draws
        sample_draw(actor=staff["compliance"], per_stratum=1, strata="none")
    sequence_audit()
    events = AuditEvent.objects.filter(action=AuditAction.COMPLIANCE_SAMPLE_DRAWN)
    assert events.count() == 20 and not events.filter(seq__isnull=True).exists()
    assert all(0 <= event.data["seed"] <= MAX_SEED <= 2**53 - 1 for event in events)


def test_same_seed_same_draw_and_sampled_at_most_once(decided, staff):
    from django.db import transaction

    class Undo(Exception):
        pass

    def draw(seed):
        try:
            with transaction.atomic():
                picked = sorted(sample_draw(actor=staff["compliance"], per_stratum=3, strata="none", seed=seed)
                                .second_looks.values_list("decision_id", flat=True))
                raise Undo
        except Undo:
            return picked

    first = draw(99)
    assert len(first) == 3
    assert draw(99) == first  # the recorded seed repeats the draw
    assert len({tuple(draw(seed)) for seed in range(1, 8)}) > 1  # and the seed is what chooses
    sample_draw(actor=staff["compliance"], per_stratum=3, strata="none", seed=99)
    again = sample_draw(actor=staff["compliance"], per_stratum=10, strata="none", seed=99)
    assert again.population == 4 and not set(first) & set(again.second_looks.values_list("decision_id", flat=True))


def test_draw_by_reviewer_and_filters(decided, staff, policy):
    sample = sample_draw(actor=staff["compliance"], per_stratum=1, strata="reviewer", clause_refs=["T-1"], seed=7)
    # Decisions citing T-1: ana0-2 (ana) and ben2 (ben): one per reviewer.
    strata = sorted(sample.second_looks.values_list("stratum", flat=True))
    assert strata == ["ana", "ben"] and sample.population == 4
    ben_only = sample_draw(actor=staff["compliance"], per_stratum=5, strata="clause_reviewer",
                           reviewer_ids=[staff["ben"].pk], seed=7)
    # ben's decisions: ben0, ben1 (T-3) and ben2 (T-1+T-3), which the first draw took (ben's only T-1 decision):
    # a decision is sampled once, so this draw finds ben0 and ben1 in the stratum "T-3 · ben" and nothing else.
    assert sorted(ben_only.second_looks.values_list("stratum", flat=True)) == ["T-3 · ben", "T-3 · ben"]
    assert ben_only.population == 2


def test_drawing_is_compliance_only_and_changes_no_decision(client, decided, staff):
    before = list(Decision.objects.order_by("pk").values())
    client.force_login(staff["senior"])
    assert client.post(reverse("compliance:quality-draw"), {"strata": "none", "per_stratum": 2}).status_code == 403
    assert client.post("/api/v1/compliance/quality/samples/", {"strata": "none", "per_stratum": 2},
                       content_type="application/json").status_code == 403
    client.force_login(staff["compliance"])
    response = client.post(reverse("compliance:quality-draw"), {"strata": "none", "per_stratum": 2, "seed": 5})
    sample = SecondLookSample.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("compliance:quality-sample",
                                                                           args=[sample.pk])
    assert sample.seed == 5 and sample.second_looks.count() == 2
    api = client.post("/api/v1/compliance/quality/samples/", {"strata": "reviewer", "per_stratum": 1},
                      content_type="application/json")
    # One per reviewer (ana, ben, dora's decider) who still has a decision the first draw did not take: which
    # two it took depends on the decisions' ids (seed 5), and a decision is sampled once.
    taken = set(sample.second_looks.values_list("decision_id", flat=True))
    left = {d.decided_by_id for d in decided.values() if d.pk not in taken}
    assert api.status_code == 201 and len(api.json()["decisions"]) == len(left) >= 2
    bad = client.post("/api/v1/compliance/quality/samples/", {"strata": "by-mood", "per_stratum": 0},
                      content_type="application/json")
    assert bad.status_code == 400 and set(bad.json()) == {"strata", "per_stratum"}
    assert list(Decision.objects.order_by("pk").values()) == before


def _look_of(decision) -> SecondLook:
    return SecondLook.objects.get(decision=decision)


def test_the_second_look_is_blind(client, decided, staff):
    decision = decided["dora0"]
    sample_draw(actor=staff["compliance"], per_stratum=10, strata="none", seed=1)
    look = _look_of(decision)
    client.force_login(staff["senior"])
    secrets = [SECRET_RATIONALE, SECRET_FACTS, "dora-decider", "abe-approver", "Suspension", "suspended"]

    listing = client.get(reverse("compliance:quality-reviews"))
    page = client.get(reverse("compliance:quality-review", args=[look.pk]))
    evidence = client.post(reverse("compliance:quality-review-evidence", args=[look.pk]))
    api_list = client.get("/api/v1/compliance/quality/second-looks/")
    api = client.get(f"/api/v1/compliance/quality/second-looks/{look.pk}/")
    for response in (listing, page, evidence, api_list, api):
        assert response.status_code == 200
    html = page.content.decode()
    assert "dora0" in html and "T-2" in html  # the case and its policy are there, to judge from
    assert "Solve step by step" in evidence.content.decode()  # the evidence, opened
    for shown in (listing, page, evidence, api_list, api):
        text = shown.content.decode()
        for secret in secrets:
            # "Suspension" is an option of the verdict's action list: it may appear there, never chosen.
            if secret == "Suspension" and shown in (page, evidence):
                assert text.count("Suspension") == 1 and 'value="suspend" selected' not in text
                continue
            assert secret not in text, f"{secret!r} leaked into {shown.wsgi_request.path}"
        assert f"decision {decision.pk}" not in text.lower()
    # Nothing is pre-ticked or pre-chosen in the verdict form: not the first decision's clause, not its action.
    assert "checked" not in html and "selected" not in html.replace('value="" selected', "")
    body = api.json()
    assert not {"action", "clauses_cited", "rationale", "decided_by", "approved_by", "decision", "stratum",
                "facts_for_holder"} & set(body)
    assert [c["ref"] for c in body["clauses"]] == ["T-1", "T-2", "T-3"]  # the whole policy version, not the cited one
    assert "stratum" not in json.dumps(api_list.json())
    # The evidence opening is the audited one, in the context of the second look.
    opened = AuditEvent.objects.get(action=AuditAction.EVIDENCE_OPENED, actor_id=str(staff["senior"].pk))
    assert opened.target_id == str(decision.case_id) and opened.data["context"] == f"second look {look.pk}"


def test_nobody_second_reviews_a_decision_they_took_or_approved(client, decided, staff, policy):
    sample_draw(actor=staff["compliance"], per_stratum=10, strata="none", seed=1)
    look = _look_of(decided["dora0"])
    for who in ("decider", "approver"):
        client.force_login(staff[who])
        assert client.get(reverse("compliance:quality-review", args=[look.pk])).status_code == 403
        assert client.post(reverse("compliance:quality-review-evidence", args=[look.pk])).status_code == 403
        assert client.post(reverse("compliance:quality-review", args=[look.pk]), {
            "action": "suspend", "clauses": [policy["competing"].pk], "rationale": "Mine."}).status_code == 403
        api = client.post(f"/api/v1/compliance/quality/second-looks/{look.pk}/verdict/",
                          {"action": "suspend", "clauses": ["T-2"], "rationale": "Mine."},
                          content_type="application/json")
        assert api.status_code == 403
        listing = client.get(reverse("compliance:quality-reviews")).content.decode()
        assert reverse("compliance:quality-review", args=[look.pk]) not in listing and "you took part" in listing
    assert not SecondLook.objects.filter(reviewed_at__isnull=False).exists()
    # Reviewers (not seniors) and compliance do not give second looks: 404, they need not know the page.
    for who in ("ana", "compliance"):
        client.force_login(staff[who])
        assert client.get(reverse("compliance:quality-review", args=[look.pk])).status_code in (403, 404)


def test_verdict_recorded_audited_and_given_once(client, decided, staff, policy):
    sample_draw(actor=staff["compliance"], per_stratum=10, strata="none", seed=1)
    look = _look_of(decided["ana0"])
    client.force_login(staff["senior"])
    bad = client.post(f"/api/v1/compliance/quality/second-looks/{look.pk}/verdict/",
                      {"action": "terminate", "clauses": ["T-9"], "rationale": "x"}, content_type="application/json")
    assert bad.status_code == 400 and "clauses" in bad.json()
    refused = client.post(f"/api/v1/compliance/quality/second-looks/{look.pk}/verdict/",
                          {"action": "terminate", "clauses": ["T-1"], "rationale": "x"},
                          content_type="application/json")
    assert refused.status_code == 400 and "does not permit" in refused.json()["detail"]
    page = client.post(reverse("compliance:quality-review", args=[look.pk]),
                       {"action": "rate_limit", "clauses": [policy["extraction"].pk], "rationale": "Heavier."})
    assert page.status_code == 302
    look.refresh_from_db()
    assert (look.action, look.reviewed_by, look.same_action, look.same_clauses) == (
        "rate_limit", staff["senior"], False, True)
    (event,) = AuditEvent.objects.filter(action=AuditAction.COMPLIANCE_SECOND_LOOK_RECORDED)
    assert event.data == {"sample": look.sample_id, "decision": look.decision_id, "action": "rate_limit",
                          "clauses": ["T-1"], "same_action": False, "same_clauses": True}
    again = client.post(f"/api/v1/compliance/quality/second-looks/{look.pk}/verdict/",
                        {"action": "warn", "clauses": ["T-1"], "rationale": "Again."}, content_type="application/json")
    assert again.status_code == 409


def test_agreement_rates_by_hand(client, decided, staff, policy, django_assert_max_num_queries):
    t1, t3 = policy["extraction"], policy["research"]
    sample_draw(actor=staff["compliance"], per_stratum=10, strata="none", seed=1)
    verdicts = {  # decision: (second look's action, clauses)      first decision   same action? same clauses?
        "ana0": ("warn", [t1]),                                  # warn, T-1       yes          yes
        "ana1": ("warn", [t1, t3]),                              # warn, T-1       yes          no
        "ana2": ("no_violation", [t1]),                          # warn, T-1       no           yes
        "ben0": ("warn", [t3]),                                  # warn, T-3       yes          yes
        "ben2": ("warn", [t1]),                                  # no viol., T-1+3 no           no
    }
    for key, (action, clauses) in verdicts.items():
        second_look_record(reviewer=staff["senior"], look=_look_of(decided[key]), action=action, clauses=clauses,
                           rationale="Second look.")
    # By reviewer: ana 3 looks, 2 same action (2/3), 2 same clauses (2/3); ben 2 looks, 1 same action (1/2),
    # 1 same clauses (1/2).
    rows = {row["key"]: row for row in agreement_by_reviewer()}
    assert {k: (r["reviewed"], r["agreed"], r["same_clauses"]) for k, r in rows.items()} == {
        "ana": (3, 2, 2), "ben": (2, 1, 1)}
    assert rows["ana"]["action_rate"] == pytest.approx(2 / 3) and rows["ben"]["action_rate"] == 0.5
    # By clause of the first decision (ben2 counts under T-1 and T-3): T-1: ana0 ana1 ana2 ben2 = 4 looks, 2 same
    # action (ana0, ana1); T-3: ben0 ben2 = 2 looks, 1 same action (ben0).
    clauses = {row["key"]: (row["reviewed"], row["agreed"]) for row in agreement_by_clause()}
    assert clauses == {"T-1": (4, 2), "T-3": (2, 1)}
    overall = agreement_overall()  # 5 looks, 3 same action, 3 same clauses
    assert (overall["reviewed"], overall["agreed"], overall["same_clauses"]) == (5, 3, 3)

    client.force_login(staff["compliance"])
    api = client.get("/api/v1/compliance/quality/agreement/").json()
    assert {r["key"]: r["agreed"] for r in api["by_reviewer"]} == {"ana": 2, "ben": 1}
    assert "66.7%" in client.get(reverse("compliance:quality")).content.decode()
    # The disagreements, side by side, for compliance: ana2 and ben2; the first rationale shown beside the second.
    with django_assert_max_num_queries(12):
        page = client.get(reverse("compliance:quality-disagreements"))
    text = page.content.decode()
    assert text.count('class="disagreement"') == 2
    assert "Template share 94% across 1,200 prompts." in text and "Second look." in text  # first beside second
    assert f"Case {decided['ana2'].case_id}" in text and f"Case {decided['ben2'].case_id}" in text
    assert f"Case {decided['ana0'].case_id} " not in text
    listed = client.get("/api/v1/compliance/quality/disagreements/").json()["results"]
    assert {(r["first"]["action"], r["second"]["action"]) for r in listed} == {("warn", "no_violation"),
                                                                                ("no_violation", "warn")}
    # Seniors do not read the comparison.
    client.force_login(staff["senior"])
    assert client.get(reverse("compliance:quality-disagreements")).status_code == 403
    assert client.get("/api/v1/compliance/quality/disagreements/").status_code == 403


def test_list_pages_do_not_grow_with_the_sample(client, policy, staff, django_assert_max_num_queries):
    t1 = policy["extraction"]
    counts = []
    for batch in (2, 6):
        for i in range(batch):
            decide(_case(f"n{batch}-{i}"), reviewer=staff["ana"], clauses=[t1], action="warn", duration_days=None)
        sample = sample_draw(actor=staff["compliance"], per_stratum=batch, strata="none", seed=batch)
        for look in sample.second_looks.all():
            second_look_record(reviewer=staff["senior"], look=look, action="no_violation", clauses=[t1],
                               rationale="No.")
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        per_page = []
        for who, url in (("compliance", reverse("compliance:quality-disagreements")),
                         ("compliance", reverse("compliance:quality-sample", args=[sample.pk])),
                         ("compliance", reverse("compliance:quality")),
                         ("senior", reverse("compliance:quality-reviews"))):
            client.force_login(staff[who])
            with CaptureQueriesContext(connection) as queries:
                assert client.get(url).status_code == 200
            per_page.append(len(queries))
        counts.append(per_page)
    assert counts[0] == counts[1]
