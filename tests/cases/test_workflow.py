"""The state rules of cases and decisions, each defined once (issue 9, "One home for every state rule"):
every move of a decision goes through workflow.DECISION_TRANSITIONS and decision_transition, with its
``decision.transitioned`` event."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from appeals.models import Appeal, open_appeal
from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.services import SYSTEM
from reviewapp.cases import models as case_models
from reviewapp.cases import workflow
from reviewapp.cases.models import Account, Case, Decision, claimable, claimable_states, open_case
from reviewapp.cases.predicates import q_holds, q_sql, sql_param
from reviewapp.cases.services.claims import _claim_next_sql, case_claim
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
    case_moves = [(e.data["from"], e.data["to"], e.data["reason"]) for e in AuditEvent.objects.filter(
        action=AuditAction.CASE_TRANSITIONED, target_id=str(case.pk)).order_by("pk")]
    assert ("awaiting_approval", "in_review", "sent back") in case_moves  # the case's own move, named
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


# ── The open case and the live claim, each defined once and read as Q, SQL and Python (issue 9) ──────────

NOW = timezone.now()
# (state, lease ends this long after NOW, or None): every state, and each side of the lease's boundary.
SPREAD = [("new", None), ("in_review", timedelta(hours=1)), ("in_review", -timedelta(hours=1)),
          ("in_review", timedelta(0)), ("in_review", None), ("awaiting_approval", None), ("decided", None),
          ("closed", None)]
EXPECTED = {  # indexes into SPREAD: the rules themselves, pinned
    "open_case": {0, 1, 2, 3, 4, 5},
    "claimable": {0, 2, 3, 4},
    "live_claim": {1},
    "claim_lapsed": {2, 3, 4},
}


@pytest.fixture
def spread(make_staff) -> list[int]:
    reviewer = make_staff(Role.REVIEWER)
    return [Case.objects.create(account=Account.objects.create(external_id=f"acct_spread_{i}"), state=state,
                                queue="extraction", sla_due_at=NOW, assignee=reviewer if state == "in_review" else None,
                                lease_expires_at=NOW + lease if lease is not None else None).pk
            for i, (state, lease) in enumerate(SPREAD)]


def _rule(name: str, now):
    return case_models.open_case() if name == "open_case" else getattr(case_models, name)(now)


def _ids(sql: str, params: dict | None = None) -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM cases_case WHERE {sql}", params or {})
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_rule_selects_the_same_rows_as_q_as_sql_and_in_python(spread, name):
    expected = {spread[i] for i in EXPECTED[name]}
    assert set(Case.objects.filter(_rule(name, NOW)).values_list("pk", flat=True)) == expected
    assert _ids(q_sql(_rule(name, sql_param("now")), Case), {"now": NOW}) == expected
    assert {case.pk for case in Case.objects.all() if q_holds(_rule(name, NOW), case)} == expected


def test_the_pages_properties_and_the_services_check_read_the_same_rule(spread):
    cases = {case.pk: case for case in Case.objects.all()}
    assert {pk for pk, case in cases.items() if case.is_open} == {spread[i] for i in EXPECTED["open_case"]}
    assert {pk for pk, case in cases.items() if case.claim_live_at(NOW)} == {spread[i] for i in EXPECTED["live_claim"]}
    # (the properties read the clock; a minute on, the one live claim is still live)
    assert {pk for pk, case in cases.items() if case.claim_is_live} == {spread[i] for i in EXPECTED["live_claim"]}
    assert {pk for pk, case in cases.items() if case.claim_has_lapsed} == {spread[i] for i in EXPECTED["claim_lapsed"]}


def test_the_partial_indexes_and_constraints_are_built_from_the_rules_and_the_database_agrees(spread):
    conditions = {i.name: i.condition for i in Case._meta.indexes} | {
        c.name: c.condition for c in Case._meta.constraints}
    assert conditions["cases_open_queue_idx"] == open_case()
    assert conditions["cases_one_open_case_per_account"] == open_case()
    assert conditions["cases_claimable_idx"] == claimable_states()
    assert {c.name: c.condition for c in Appeal._meta.constraints}["appeals_one_open_per_decision"] == open_appeal()
    # The predicates PostgreSQL holds for those indexes (as migrated) select what the rules select.
    for index, rule in [("cases_open_queue_idx", open_case()), ("cases_one_open_case_per_account", open_case()),
                        ("cases_claimable_idx", claimable_states())]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_get_expr(indpred, indrelid) FROM pg_index JOIN pg_class c ON c.oid = indexrelid "
                           "WHERE c.relname = %s", [index])
            (predicate,) = cursor.fetchone()
        assert _ids(predicate) == set(Case.objects.filter(rule).values_list("pk", flat=True)), index
    assert q_sql(claimable(sql_param("now")), Case) in _claim_next_sql()  # claim-next's raw SQL is the rule


def test_the_queue_page_shows_live_and_lapsed_claims_by_the_rule(client, spread):
    reviewer = Case.objects.get(pk=spread[1]).assignee
    client.force_login(reviewer)
    page = client.get(reverse("review:queue", args=["extraction"])).content.decode()
    assert page.count(f"claim by {reviewer} lapsed") == 3  # the lease ran out an hour ago, just now, or was never set
    assert page.count(f"<small>{reviewer}</small>") == 1  # the live one
