"""Exports round-trip (issue 11, "Tests that must exist": exports … round-trip): a journey built with the real
services — a decision sent back and decided again under two clauses, approved, its statement issued, appealed by a
researcher and overturned; a no-violation decision; a decision modified on appeal (its replacement decision); a
Forum share approved, then withdrawn for the overturned account; one rejected; one withdrawn whole — with awkward
text everywhere (commas, quotes, newlines, unicode, leading =, +, -, @). Each of decisions, statements, appeals and
shares is downloaded as CSV and as JSONL through the console's download, parsed back with ``csv`` and ``json``,
and every row's every field must equal the database's value, read independently here through the ORM: ids,
instants (parsed back to the same microsecond), lists, JSON, booleans, text exactly — and in CSV, text that starts
with =, +, -, @, a tab or a carriage return prefixed with one apostrophe, and nothing else changed."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

import pytest

from appeals.models import Appeal
from appeals.services import appeal_claim, appeal_decide
from reviewapp.cases.models import Decision, StatementOfReasons
from reviewapp.cases.services.decisions import decision_approve, decision_record, decision_send_back
from reviewapp.compliance.exports.selectors import DATASETS
from reviewapp.forum import services as forum
from reviewapp.forum.bundles import bundle_build
from reviewapp.forum.content import ShareChoice
from reviewapp.forum.models import ShareApproval, ShareProposal, ShareVersion, ShareWithdrawal
from reviewapp.people.roles import Role
from tests.appeals.review_fixtures import (  # noqa: F401 — fixtures
    appeal_staff_fixture,
    attachments_dir_fixture,
    decide,
    file_appeal,
    flagged_case,
)
from tests.forum.conftest import FRONTIER

pytestmark = pytest.mark.django_db
RANGE = {"from": "2000-01-01", "to": "2099-12-31"}

RATIONALE = '=HYPERLINK("http://x.example/?a=1,b=2"), then "quoted", a comma,\nand a second line — ünïcødé ✓ 名前'
SENT_BACK = '+Cite the numbers, "all" of them;\nthen resubmit.'
FACTS = "@holder: between 20 and 21 November, 1,200 prompts \"filled\" from one template.\nΣ = 1 200."
GROUNDS = '-We run a published evaluation harness, see "Appendix A",\r\nsigned: Zoë Ørsted'
AFFILIATION = '=Université de Genève, "Lab, 3"'
OUTCOME = "Overturned: the harness is documented,\n\"public\" and rate-limited; tab\there."
REJECTED = "@Not a campaign, one account; \"narrow\" it, please."
WITHDRAWN = "Wrong cluster, entirely — \"c-1\" was ≠ \"c-2\"."


def csv_safe(text: str) -> str:
    """The CSV rule, stated here on its own: one apostrophe before a text cell starting with =, +, -, @, tab or
    carriage return (a spreadsheet would run it as a formula); any other text unchanged."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@pytest.fixture
def journey(policy, appeal_staff, attachments_dir, make_staff):
    staff = appeal_staff
    officer, officer2 = make_staff(Role.SHARING_OFFICER, username="otto-officer"), make_staff(
        Role.SHARING_OFFICER, username="olivia-officer")

    # A: T-2 needs a second pair of eyes: sent back, decided again under T-1 and T-2, approved, appealed.
    case_a = flagged_case("template-miner", "acct_rt_a")
    first = decide(case_a, reviewer=staff.decider, clauses=[policy["competing"]], rationale=RATIONALE)
    decision_send_back(approver=staff.sender, decision=first, reason=SENT_BACK)
    second = decision_record(reviewer=staff.decider, case=case_a, clauses=[policy["competing"], policy["extraction"]],
                             action="suspend", duration_days=30, rationale=RATIONALE, facts_for_holder=FACTS)
    decision_a = decision_approve(approver=staff.approver, decision=second)

    # B: no violation (no duration, no statement of a restriction).
    decide(flagged_case("template-miner", "acct_rt_b"), reviewer=staff.other_senior, clauses=[policy["extraction"]],
           action="no_violation", duration_days=None, rationale="-2 + 3, \"fine\"")

    # C: a rate limit under T-1, modified on appeal to a warning (a replacement decision).
    decision_c = decide(flagged_case("template-miner", "acct_rt_c"), reviewer=staff.other_senior,
                        clauses=[policy["extraction"]], action="rate_limit", rationale="Plain rationale.")

    # Shares: of case A (approved, then withdrawn for A when its decision is overturned), of case C rejected, and
    # of account C approved then withdrawn whole.
    choice = ShareChoice(campaign_summary=False, volume_stats=True)

    def approve(proposal, by):
        proposal.refresh_from_db()
        version = forum.current_version(proposal)
        forum.share_approve(officer=by, proposal=proposal, version_number=version.number,
                            bundle_sha256=bundle_build(version).sha256)

    reviewer = make_staff(Role.REVIEWER, username="rita-reviewer")
    case_a.refresh_from_db()
    share_a = forum.share_propose(proposer=reviewer, source=case_a, choice=choice, collection_id=FRONTIER)
    approve(share_a, officer)
    decision_c.case.refresh_from_db()
    rejected = forum.share_propose(proposer=reviewer, source=decision_c.case, choice=choice, collection_id=FRONTIER)
    forum.share_reject(officer=officer2, proposal=rejected, reason=REJECTED)
    whole = forum.share_propose(proposer=reviewer, source=decision_c.account, choice=choice, collection_id=FRONTIER)
    approve(whole, officer2)
    forum.share_withdraw(officer=officer, proposal=whole, reason=WITHDRAWN)

    appeal_a = file_appeal(decision_a, grounds=GROUNDS, researcher_claim=True, affiliation=AFFILIATION)
    appeal_claim(reviewer=staff.outsider, appeal=appeal_a)
    appeal_decide(reviewer=staff.outsider, appeal=appeal_a, outcome="overturned", reason=OUTCOME)
    appeal_c = file_appeal(decision_c, grounds="Only a warning, please.")
    appeal_claim(reviewer=staff.outsider, appeal=appeal_c)
    appeal_decide(reviewer=staff.outsider, appeal=appeal_c, outcome="modified", reason="A warning suffices.",
                  clauses=[policy["extraction"]], action="warn", facts_for_holder="=You were warned, \"once\".")
    return staff


# ── what the database holds, read through the ORM (the oracle) ─────────────────────────────────────────────────

def _username(user) -> str | None:
    return user.username if user else None


def _refs(decision: Decision) -> list[str]:
    return [c.ref for c in decision.clauses.order_by("position", "ref")]


def expected_decisions() -> list[dict]:
    return [{
        "id": d.pk, "case_id": d.case_id, "account": d.account.external_id, "decided_at": d.decided_at,
        "decided_by": _username(d.decided_by), "policy": d.policy_version.policy.slug,
        "policy_version": d.policy_version.number, "clauses": _refs(d), "action": d.action,
        "duration_days": d.duration_days, "state": d.state, "approved_by": _username(d.approved_by),
        "approved_at": d.approved_at, "sent_back_reason": d.sent_back_reason, "effective_at": d.effective_at,
        "ends_at": d.ends_at, "lifted_at": d.lifted_at,
        "campaign_run": str(d.campaign_run) if d.campaign_run else None, "rationale": d.rationale,
        "facts_for_holder": d.facts_for_holder,
    } for d in Decision.objects.order_by("decided_at", "pk")]


def expected_statements() -> list[dict]:
    return [{
        "id": s.pk, "decision_id": s.decision_id, "account": s.decision.account.external_id,
        "issued_at": s.issued_at, "appeal_deadline": s.appeal_deadline, "action": s.decision.action,
        "clauses": _refs(s.decision), "content": s.content,
    } for s in StatementOfReasons.objects.order_by("issued_at", "pk")]


def expected_appeals() -> list[dict]:
    return [{
        "id": a.pk, "decision_id": a.decision_id, "account": a.account.external_id, "filed_at": a.filed_at,
        "deadline": a.deadline, "state": a.state, "researcher_claim": a.researcher_claim,
        "affiliation": a.affiliation, "reviewer": _username(a.reviewer), "claimed_at": a.claimed_at,
        "outcome": a.outcome, "decided_at": a.decided_at, "replacement_decision_id": a.replacement_id,
        "outcome_reason": a.outcome_reason, "grounds": a.grounds,
    } for a in Appeal.objects.order_by("filed_at", "pk")]


def expected_shares() -> list[dict]:
    rows = []
    for p in ShareProposal.objects.order_by("proposed_at", "pk"):
        approval = ShareApproval.objects.filter(proposal=p).first()
        rows.append({
            "id": p.pk, "uuid": str(p.uuid), "source": p.source, "case_id": p.case_id,
            "account": p.account.external_id if p.account else None, "campaign_id": p.campaign_id,
            "collection_id": ShareVersion.objects.get(proposal=p, number=p.current_version).collection_id,
            "proposed_by": _username(p.proposed_by), "proposed_at": p.proposed_at, "state": p.state,
            "current_version": p.current_version, "decided_by": _username(p.decided_by), "decided_at": p.decided_at,
            "rejection_reason": p.rejection_reason,
            "approved_by": _username(approval.approved_by) if approval else None,
            "approved_at": approval.approved_at if approval else None,
            "approved_bundle_sha256": approval.bundle_sha256 if approval else None,
            "withdrawn_at": p.withdrawn_at, "withdrawn_by": _username(p.withdrawn_by),
            "withdrawal_reason": p.withdrawal_reason,
            "accounts_withdrawn": [w.account.external_id for w in ShareWithdrawal.objects.filter(
                proposal=p, account__isnull=False).order_by("withdrawn_at", "pk")],
        })
    return rows


EXPECTED = {"decisions": expected_decisions, "statements": expected_statements, "appeals": expected_appeals,
            "shares": expected_shares}


# ── parsing the files back ─────────────────────────────────────────────────────────────────────────────────────

def _from_csv(kind: str, cell: str):
    """A CSV cell back to its value; an empty cell is no value (text: the empty string)."""
    if kind == "text":
        return cell
    if cell == "":
        return [] if kind == "list" else None
    return {"int": int, "time": datetime.fromisoformat, "json": json.loads, "list": lambda c: c.split(" "),
            "bool": {"true": True, "false": False}.__getitem__}[kind](cell)


def _as_in_csv(kind: str, value):
    """What a CSV cell of the database's value must read back as."""
    if kind == "text":
        return csv_safe("" if value is None else str(value))
    return value


def _from_jsonl(kind: str, value):
    return datetime.fromisoformat(value) if kind == "time" and value is not None else value


def download(client, slug: str, fmt: str) -> str:
    response = client.get(f"/compliance/exports/{slug}.{fmt}", RANGE)
    assert response.status_code == 200, response.content
    return b"".join(response.streaming_content).decode("utf-8")


@pytest.fixture
def officer_client(client, journey):
    client.force_login(journey.compliance)
    return client


@pytest.mark.parametrize("slug", sorted(EXPECTED))
def test_csv_round_trips_every_field(officer_client, slug):
    dataset, expected = DATASETS[slug], EXPECTED[slug]()
    kinds = {column.name: column.kind for column in dataset.columns}
    reader = csv.reader(io.StringIO(download(officer_client, slug, "csv"), newline=""))
    header, *rows = list(reader)
    assert header == dataset.column_names
    parsed = [{name: _from_csv(kinds[name], cell) for name, cell in zip(header, row, strict=True)} for row in rows]
    wanted = [{name: _as_in_csv(kinds[name], value) for name, value in row.items()} for row in expected]
    assert len(parsed) == len(wanted) >= 2
    for got, want in zip(parsed, wanted, strict=True):
        assert got == want, {k: (got[k], want[k]) for k in want if got[k] != want[k]}


@pytest.mark.parametrize("slug", sorted(EXPECTED))
def test_jsonl_round_trips_every_field(officer_client, slug):
    dataset, expected = DATASETS[slug], EXPECTED[slug]()
    kinds = {column.name: column.kind for column in dataset.columns}
    lines = download(officer_client, slug, "jsonl").splitlines()
    parsed = [json.loads(line) for line in lines]
    assert all(list(row) == dataset.column_names for row in parsed)  # keys in column order
    parsed = [{name: _from_jsonl(kinds[name], value) for name, value in row.items()} for row in parsed]
    assert len(parsed) == len(expected) >= 2
    for got, want in zip(parsed, expected, strict=True):
        assert got == want, {k: (got[k], want[k]) for k in want if got[k] != want[k]}


def test_the_journey_has_the_awkward_values_the_round_trips_check(officer_client):
    """The seeded rows carry what the round trips are about, so the comparisons above are not of empty cells."""
    decisions = {row["id"]: row for row in expected_decisions()}
    assert any(row["rationale"] == RATIONALE and row["clauses"] == ["T-1", "T-2"] and row["approved_by"] == "ava"
               and row["facts_for_holder"] == FACTS for row in decisions.values())
    assert any(row["sent_back_reason"] == SENT_BACK for row in decisions.values())
    assert any(row["duration_days"] is None and row["state"] == "no_action" for row in decisions.values())
    appeals = expected_appeals()
    assert {row["outcome"] for row in appeals} == {"overturned", "modified"}
    assert any(row["replacement_decision_id"] for row in appeals)
    assert any(row["grounds"] == GROUNDS and row["researcher_claim"] is True for row in appeals)
    shares = {row["state"]: row for row in expected_shares()}
    assert shares["rejected"]["rejection_reason"] == REJECTED
    assert shares["withdrawn"]["withdrawal_reason"] == WITHDRAWN
    assert any(row["accounts_withdrawn"] == ["acct_rt_a"] and row["approved_bundle_sha256"]
               for row in expected_shares())
    assert all(isinstance(row["content"], dict) and row["content"] for row in expected_statements())

    # The rule, as the file has it: exactly one apostrophe in CSV, none in JSONL, the rest as written.
    text = download(officer_client, "decisions", "csv")
    row = next(r for r in csv.DictReader(io.StringIO(text, newline="")) if r["clauses"] == "T-1 T-2")
    assert row["rationale"] == "'" + RATIONALE and row["facts_for_holder"] == "'" + FACTS
    plain = next(r for r in csv.DictReader(io.StringIO(download(officer_client, "appeals", "csv"), newline=""))
                 if r["grounds"] == "Only a warning, please.")
    assert plain["outcome_reason"] == "A warning suffices." and plain["affiliation"] == ""
    lines = [json.loads(line) for line in download(officer_client, "decisions", "jsonl").splitlines()]
    assert RATIONALE in [line["rationale"] for line in lines]
