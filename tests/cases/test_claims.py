"""Claiming: best case first, never two claimers on one case, leases, and the evidence permission."""

import threading

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.utils import timezone

from flags.evidence import evidence_open
from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.cases.models import Case
from reviewapp.cases.selectors import can_open_evidence
from reviewapp.cases.services.claims import (
    ClaimError,
    case_claim,
    case_claim_next,
    case_claims_lapse,
    case_release,
)
from reviewapp.people.roles import Role
from tests.conftest import flag_payload
from tests.factories import ingest_and_group


@pytest.mark.django_db
def test_claim_next_takes_the_highest_priority_then_the_oldest(detector, make_staff):
    ingest_and_group(detector, [flag_payload(1, signal="templated_prompts", score=0.5),
                          flag_payload(2, signal="templated_prompts", score=0.99, request_count=10**6),
                          flag_payload(3, signal="templated_prompts", score=0.5)])
    reviewer = make_staff(Role.REVIEWER)
    order = [case_claim_next(reviewer=reviewer, queue="extraction").account.external_id for _ in range(3)]
    assert order == ["acct_2", "acct_1", "acct_3"]
    assert case_claim_next(reviewer=reviewer, queue="extraction") is None
    assert AuditEvent.objects.filter(action=AuditAction.CASE_CLAIMED).count() == 3


@pytest.mark.django_db
def test_claim_grants_the_evidence_and_release_takes_it_back(case, make_staff):
    reviewer, other = make_staff(Role.REVIEWER), make_staff(Role.REVIEWER)
    assert not can_open_evidence(reviewer, case)
    case = case_claim(reviewer=reviewer, case=case)
    assert case.state == Case.State.IN_REVIEW and case.assignee == reviewer
    assert can_open_evidence(reviewer, case) and not can_open_evidence(other, case)
    with pytest.raises(ClaimError, match="claimed by"):
        case_claim(reviewer=other, case=case)
    case = case_release(reviewer=reviewer, case=case)
    assert case.state == Case.State.NEW and case.assignee is None
    reviewer = type(reviewer).objects.get(pk=reviewer.pk)  # fresh permission cache
    assert not can_open_evidence(reviewer, case)


@pytest.mark.django_db
def test_a_lapsed_claim_can_be_taken_over_and_moves_the_permission(case, make_staff):
    first, second = make_staff(Role.REVIEWER), make_staff(Role.REVIEWER)
    case_claim(reviewer=first, case=case)
    Case.objects.filter(pk=case.pk).update(lease_expires_at=timezone.now() - timezone.timedelta(minutes=1))
    taken = case_claim_next(reviewer=second, queue=case.queue)
    assert taken.pk == case.pk and taken.assignee == second
    first = type(first).objects.get(pk=first.pk)
    assert not can_open_evidence(first, taken) and can_open_evidence(second, taken)


@pytest.mark.django_db
def test_lapsed_claims_return_to_the_queue(case, make_staff):
    reviewer = make_staff(Role.REVIEWER)
    case_claim(reviewer=reviewer, case=case)
    Case.objects.filter(pk=case.pk).update(lease_expires_at=timezone.now() - timezone.timedelta(seconds=1))
    assert case_claims_lapse() == 1
    case.refresh_from_db()
    assert (case.state, case.assignee) == (Case.State.NEW, None)
    assert AuditEvent.objects.filter(action=AuditAction.CASE_CLAIM_LAPSED, target_id=str(case.pk)).exists()


@pytest.mark.django_db
def test_only_roles_that_review_can_claim(case, make_staff):
    for role in (Role.COMPLIANCE_OFFICER, Role.SHARING_OFFICER, Role.ADMIN):
        with pytest.raises(PermissionDenied):
            case_claim(reviewer=make_staff(role), case=case)
        with pytest.raises(PermissionDenied):
            case_claim_next(reviewer=make_staff(role), queue=case.queue)
    case.refresh_from_db()
    assert case.assignee is None


@pytest.mark.django_db
def test_evidence_opening_is_audited_and_refused_to_others(case, make_staff):
    reviewer, other = make_staff(Role.REVIEWER), make_staff(Role.REVIEWER)
    with pytest.raises(PermissionDenied):
        evidence_open(user=other, case=case, context="curious")
    assert not AuditEvent.objects.filter(action=AuditAction.EVIDENCE_OPENED).exists()
    case_claim(reviewer=reviewer, case=case)
    flags = evidence_open(user=reviewer, case=case, context="review")
    assert [f["evidence"]["excerpts"] for f in flags] == [["Solve step by step: {problem}"]]
    event = AuditEvent.objects.get(action=AuditAction.EVIDENCE_OPENED)
    assert (event.actor_id, event.target_id) == (str(reviewer.pk), str(case.pk))
    assert event.data == {"flags": [flags[0]["id"]], "context": "review", "excerpts": 1}


@pytest.mark.django_db
def test_compliance_opens_any_evidence_and_it_is_audited(case, make_staff):
    officer = make_staff(Role.COMPLIANCE_OFFICER)
    evidence_open(user=officer, case=case, context="QA sample")
    assert AuditEvent.objects.filter(action=AuditAction.EVIDENCE_OPENED, actor_id=str(officer.pk)).count() == 1


@pytest.mark.django_db(transaction=True)
def test_many_concurrent_claimers_never_share_a_case(detector, make_staff):
    cases = ingest_and_group(detector, [flag_payload(n, account_id=f"acct_{n}") for n in range(60)])
    reviewers = [make_staff(Role.REVIEWER) for _ in range(6)]
    claimed: dict[int, list[int]] = {r.pk: [] for r in reviewers}
    barrier = threading.Barrier(len(reviewers))
    errors = []

    def work(reviewer):
        try:
            barrier.wait()
            while (case := case_claim_next(reviewer=reviewer, queue="extraction")) is not None:
                claimed[reviewer.pk].append(case.pk)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(r,)) for r in reviewers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    every = [pk for pks in claimed.values() for pk in pks]
    assert sorted(every) == sorted(c.pk for c in cases)  # each case once, none twice, none left
    assert sum(1 for pks in claimed.values() if pks) > 1  # the work really was shared
    assert AuditEvent.objects.filter(action=AuditAction.CASE_CLAIMED).count() == len(cases)


# ── Every move of a case goes through workflow.TRANSITIONS and writes its event (issue 9) ──────────────

def _moves(case) -> list[tuple[str, str, str]]:
    return [(e.data["from"], e.data["to"], e.data["reason"]) for e in AuditEvent.objects.filter(
        action=AuditAction.CASE_TRANSITIONED, target_id=str(case.pk)).order_by("pk")]


@pytest.mark.django_db
def test_claim_release_claim_next_and_lapse_each_write_their_transition(case, make_staff):
    reviewer = make_staff(Role.REVIEWER)
    case_claim(reviewer=reviewer, case=case)
    case_claim(reviewer=reviewer, case=case)  # a renewal is no move
    case_release(reviewer=reviewer, case=case)
    assert case_claim_next(reviewer=reviewer, queue=case.queue).pk == case.pk
    Case.objects.filter(pk=case.pk).update(lease_expires_at=timezone.now() - timezone.timedelta(seconds=1))
    assert case_claims_lapse() == 1
    assert _moves(case) == [("new", "in_review", "claimed"), ("in_review", "new", "released"),
                            ("new", "in_review", "claimed"), ("in_review", "new", "claim lapsed")]
    lapse = AuditEvent.objects.filter(action=AuditAction.CASE_TRANSITIONED).order_by("pk").last()
    assert lapse.actor_type == "system"


@pytest.mark.django_db
@pytest.mark.parametrize("claim", ["claim", "claim_next"])
def test_a_claim_the_table_does_not_allow_is_refused_and_changes_nothing(case, make_staff, monkeypatch, claim):
    from reviewapp.cases import workflow

    monkeypatch.setitem(workflow.TRANSITIONS, Case.State.NEW, frozenset({Case.State.CLOSED}))
    reviewer = make_staff(Role.REVIEWER)
    with pytest.raises(workflow.InvalidCaseTransition, match="cannot go from new to in_review"):
        if claim == "claim":
            case_claim(reviewer=reviewer, case=case)
        else:
            case_claim_next(reviewer=reviewer, queue=case.queue)
    case.refresh_from_db()
    assert (case.state, case.assignee) == (Case.State.NEW, None)
    assert not AuditEvent.objects.filter(action__in=[AuditAction.CASE_CLAIMED, AuditAction.CASE_TRANSITIONED]).exists()
