"""Every move of an appeal goes through appeals.workflow.TRANSITIONS and its one service, appeal_transition,
which writes its ``appeal.transitioned`` event (issue 9, "One home for every state rule")."""

from __future__ import annotations

import pytest

from appeals import workflow
from appeals.models import Appeal
from appeals.services import appeal_claim, appeal_decide, appeal_message_add, appeal_transition
from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.services import SYSTEM

from .review_fixtures import (  # noqa: F401 (fixtures, asked for by name)
    appeal_staff_fixture,
    attachments_dir_fixture,
    contested_fixture,
)

pytestmark = pytest.mark.django_db
REASON = "Your harness is a published benchmark run under the researcher programme; the volume matches it."


def moves(appeal: Appeal) -> list[tuple[str, str, str]]:
    return [(e.data["from"], e.data["to"], e.data["reason"]) for e in AuditEvent.objects.filter(
        action=AuditAction.APPEAL_TRANSITIONED, target_type="appeals.appeal", target_id=str(appeal.pk)).order_by("pk")]


def test_claim_question_reply_and_outcome_each_write_their_move(contested):
    reviewer, appeal = contested.staff.outsider, contested.appeal
    appeal_claim(reviewer=reviewer, appeal=appeal)
    appeal_claim(reviewer=reviewer, appeal=appeal)  # claimed again by its reviewer: no move
    appeal_message_add(appeal=appeal, staff=reviewer, text="Which benchmark is it?")
    appeal_message_add(appeal=appeal, staff=reviewer, text="And its version?")  # still waiting: no move
    appeal_message_add(appeal=appeal, holder=contested.account, text="HELM 1.4, published.")
    appeal_decide(reviewer=reviewer, appeal=appeal, outcome="overturned", reason=REASON)
    assert moves(appeal) == [("filed", "in_review", "claimed"),
                             ("in_review", "info_requested", "information requested"),
                             ("info_requested", "in_review", "the holder replied"),
                             ("in_review", "decided", "overturned")]
    actors = list(AuditEvent.objects.filter(action=AuditAction.APPEAL_TRANSITIONED).order_by("pk")
                  .values_list("actor_type", flat=True))
    assert actors[2] == "holder" and actors[3] != "holder"
    appeal.refresh_from_db()
    assert (appeal.state, appeal.outcome) == (Appeal.State.DECIDED, Appeal.Outcome.OVERTURNED)


def test_a_move_the_table_refuses_raises_and_changes_nothing(contested, monkeypatch):
    reviewer, appeal = contested.staff.outsider, contested.appeal
    monkeypatch.setitem(workflow.TRANSITIONS, Appeal.State.FILED, frozenset())
    with pytest.raises(workflow.InvalidAppealTransition, match=f"appeal {appeal.pk} cannot go from filed to in_review"):
        appeal_claim(reviewer=reviewer, appeal=appeal)
    appeal.refresh_from_db()
    assert (appeal.state, appeal.reviewer) == (Appeal.State.FILED, None)
    assert not AuditEvent.objects.filter(action__in=[AuditAction.APPEAL_CLAIMED, AuditAction.APPEAL_TRANSITIONED])


def test_an_outcome_the_table_refuses_leaves_the_decision_in_force(contested, monkeypatch):
    reviewer, appeal = contested.staff.outsider, contested.appeal
    appeal_claim(reviewer=reviewer, appeal=appeal)
    monkeypatch.setitem(workflow.TRANSITIONS, Appeal.State.IN_REVIEW, frozenset({Appeal.State.INFO_REQUESTED}))
    with pytest.raises(workflow.InvalidAppealTransition, match="cannot go from in_review to decided"):
        appeal_decide(reviewer=reviewer, appeal=appeal, outcome="overturned", reason=REASON)
    appeal.refresh_from_db()
    contested.decision.refresh_from_db()
    assert (appeal.state, appeal.outcome) == (Appeal.State.IN_REVIEW, "")
    assert contested.decision.state == "enforced"  # the reversal rolled back with the refused move
    assert not AuditEvent.objects.filter(action__in=[AuditAction.APPEAL_DECIDED, AuditAction.DECISION_REVERSED])


@pytest.mark.parametrize(("start", "to"), [("decided", "in_review"), ("filed", "decided"),
                                           ("filed", "info_requested"), ("decided", "filed")])
def test_the_table_itself_refuses_moves_out_of_order(contested, start, to):
    appeal = contested.appeal
    Appeal.objects.filter(pk=appeal.pk).update(state=start)
    appeal.refresh_from_db()
    events = AuditEvent.objects.count()
    with pytest.raises(workflow.InvalidAppealTransition, match=f"cannot go from {start} to {to}"):
        appeal_transition(appeal=appeal, to=to, actor=SYSTEM, reason="test")
    appeal.refresh_from_db()
    assert appeal.state == start and AuditEvent.objects.count() == events


def test_a_decided_appeal_cannot_be_claimed_again(contested):
    from appeals.services import AppealConflict

    staff, appeal = contested.staff, contested.appeal
    appeal_claim(reviewer=staff.outsider, appeal=appeal)
    appeal_decide(reviewer=staff.outsider, appeal=appeal, outcome="upheld", reason=REASON)
    for senior in (staff.outsider, staff.other_senior):
        with pytest.raises(AppealConflict, match=f"^Appeal {appeal.pk} is already decided\\.$"):
            appeal_claim(reviewer=senior, appeal=appeal)
    appeal.refresh_from_db()
    assert (appeal.state, appeal.reviewer) == (Appeal.State.DECIDED, staff.outsider)
    assert moves(appeal)[-1] == ("in_review", "decided", "upheld")
