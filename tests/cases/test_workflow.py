"""The state rules of cases and decisions, each defined once (issue 9, "One home for every state rule"):
every move of a decision goes through workflow.DECISION_TRANSITIONS and decision_transition, with its
``decision.transitioned`` event."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.services import SYSTEM
from reviewapp.cases import workflow
from reviewapp.cases.models import Case, Decision
from reviewapp.cases.services.claims import case_claim
from reviewapp.cases.services.decisions import (
    decision_approve,
    decision_record,
    decision_send_back,
    decision_transition,
    decisions_lift_expired,
)
from reviewapp.outbox.models import OutboxMessage
from reviewapp.people.roles import Role

pytestmark = pytest.mark.django_db
FACTS = "Between 20 and 21 November the account sent 1,200 templated prompts."
D = Decision.State


def decide(reviewer, case, clause, action, **kwargs):
    case_claim(reviewer=reviewer, case=case)
    return decision_record(reviewer=reviewer, case=case, clauses=[clause], action=action,
                           rationale="Templated prompts at scale.", facts_for_holder=FACTS, **kwargs)


def moves(decision) -> list[tuple[str, str, str]]:
    return [(e.data["from"], e.data["to"], e.data["reason"]) for e in AuditEvent.objects.filter(
        action=AuditAction.DECISION_TRANSITIONED, target_id=str(decision.pk)).order_by("pk")]


@pytest.fixture
def people(make_staff):
    return make_staff(Role.REVIEWER, username="rhea"), make_staff(Role.SENIOR_REVIEWER, username="sam")


def test_approval_lifting_and_sending_back_each_write_their_move(case, people, policy):
    reviewer, senior = people
    severe = decide(reviewer, case, policy["competing"], "suspend", duration_days=3)
    assert severe.state == D.AWAITING_APPROVAL and moves(severe) == []  # recorded, not moved
    decision_send_back(approver=senior, decision=severe, reason="Cite the volume.")
    again = decision_record(reviewer=reviewer, case=case, clauses=[policy["competing"]], action="suspend",
                            duration_days=3, rationale="Templated prompts at scale.", facts_for_holder=FACTS)
    decision_approve(approver=senior, decision=again)
    assert decisions_lift_expired(now=timezone.now() + timedelta(days=3, minutes=1)) == 1
    assert moves(severe) == [("awaiting_approval", "sent_back", "sent back")]
    assert moves(again) == [("awaiting_approval", "enforced", "approved"), ("enforced", "lifted", "expired")]
    again.refresh_from_db()
    assert again.state == D.LIFTED and again.effective_at is not None and again.approved_by == senior


def test_an_approval_the_table_refuses_raises_and_changes_nothing(case, people, policy, monkeypatch):
    reviewer, senior = people
    decision = decide(reviewer, case, policy["competing"], "suspend", duration_days=3)
    events = AuditEvent.objects.count()
    monkeypatch.setitem(workflow.DECISION_TRANSITIONS, D.AWAITING_APPROVAL, frozenset({D.SENT_BACK}))
    with pytest.raises(workflow.InvalidDecisionTransition,
                       match=f"decision {decision.pk} cannot go from awaiting_approval to enforced"):
        decision_approve(approver=senior, decision=decision)
    decision.refresh_from_db()
    assert (decision.state, decision.approved_by, decision.effective_at) == (D.AWAITING_APPROVAL, None, None)
    assert AuditEvent.objects.count() == events and not OutboxMessage.objects.exists()
    assert Case.objects.get(pk=case.pk).state == Case.State.AWAITING_APPROVAL


def test_a_lift_the_table_refuses_raises_and_lifts_nothing(case, people, policy, monkeypatch):
    decision = decide(people[0], case, policy["extraction"], "suspend", duration_days=3)
    monkeypatch.setitem(workflow.DECISION_TRANSITIONS, D.ENFORCED, frozenset({D.REVERSED}))
    with pytest.raises(workflow.InvalidDecisionTransition, match="cannot go from enforced to lifted"):
        decisions_lift_expired(now=timezone.now() + timedelta(days=4))
    decision.refresh_from_db()
    assert (decision.state, decision.lifted_at) == (D.ENFORCED, None)
    assert not AuditEvent.objects.filter(action__in=[AuditAction.DECISION_LIFTED, AuditAction.DECISION_TRANSITIONED])


def test_a_decision_is_recorded_only_in_a_state_the_table_starts_with(case, people, policy, monkeypatch):
    monkeypatch.setattr(workflow, "DECISION_START", frozenset({D.AWAITING_APPROVAL}))
    with pytest.raises(workflow.InvalidDecisionTransition, match="cannot go from \\(new\\) to enforced"):
        decide(people[0], case, policy["extraction"], "warn")
    assert not Decision.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditAction.DECISION_RECORDED).exists()


@pytest.mark.parametrize(("start", "to"), [("no_action", "enforced"), ("sent_back", "enforced"),
                                           ("reversed", "enforced"), ("lifted", "enforced"),
                                           ("enforced", "awaiting_approval")])
def test_the_table_itself_refuses_moves_out_of_order(case, people, policy, start, to):
    decision = decide(people[0], case, policy["extraction"], "warn")
    Decision.objects.filter(pk=decision.pk).update(state=start)
    decision.refresh_from_db()
    events = AuditEvent.objects.count()
    with pytest.raises(workflow.InvalidDecisionTransition, match=f"cannot go from {start} to {to}"):
        decision_transition(decision=decision, to=to, actor=SYSTEM, reason="test")
    decision.refresh_from_db()
    assert decision.state == start and AuditEvent.objects.count() == events
