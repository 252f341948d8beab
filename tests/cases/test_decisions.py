"""Decisions under policy: clauses in force, permitted actions, four eyes, enforcement in one transaction."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.cases.models import Account, Case, Decision, StatementOfReasons
from reviewapp.cases.services.claims import case_claim
from reviewapp.cases.services.decisions import (
    PolicyViolation,
    campaign_decide,
    decision_approve,
    decision_record,
    decision_send_back,
    decisions_lift_expired,
)
from reviewapp.outbox.models import OutboxMessage
from reviewapp.people.roles import Role
from tests.conftest import flag_payload
from tests.factories import ingest_and_group

pytestmark = pytest.mark.django_db
FACTS = "Between 20 and 21 November the account sent 1,200 templated prompts."


@pytest.fixture
def reviewer(make_staff):
    return make_staff(Role.REVIEWER, username="rhea")


@pytest.fixture
def claimed(case, reviewer):
    return case_claim(reviewer=reviewer, case=case)


def decide(reviewer, case, clauses, action, **kwargs):
    kwargs.setdefault("rationale", "Templated prompts at scale from one account.")
    kwargs.setdefault("facts_for_holder", FACTS)
    return decision_record(reviewer=reviewer, case=case, clauses=clauses, action=action, **kwargs)


def test_a_minor_decision_is_enforced_with_statement_outbox_and_audit(claimed, reviewer, policy):
    decision = decide(reviewer, claimed, [policy["extraction"]], "suspend", duration_days=7)
    decision.refresh_from_db()
    assert decision.state == Decision.State.ENFORCED
    assert decision.ends_at - decision.effective_at == timedelta(days=7)
    assert Account.objects.get(pk=claimed.account_id).enforcement_status == "suspended"
    assert Case.objects.get(pk=claimed.pk).state == Case.State.DECIDED
    statement = StatementOfReasons.objects.get(decision=decision)
    assert statement.content["ground"]["clauses"][0]["ref"] == "T-1"
    assert statement.content["facts"] == FACTS
    kinds = sorted(OutboxMessage.objects.values_list("kind", flat=True))
    assert kinds == ["email", "enforcement"]
    enforcement = OutboxMessage.objects.get(kind="enforcement")
    assert enforcement.payload["action"] == "suspend" and enforcement.payload["account_id"] == "acct_1"
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {AuditAction.DECISION_RECORDED, AuditAction.DECISION_ENFORCED, AuditAction.STATEMENT_ISSUED} <= actions


def test_a_decision_needs_the_claim(case, reviewer, policy, make_staff):
    with pytest.raises(PermissionDenied, match="Claim case"):
        decide(reviewer, case, [policy["extraction"]], "warn")
    case_claim(reviewer=make_staff(Role.REVIEWER), case=case)
    with pytest.raises(PermissionDenied):
        decide(reviewer, case, [policy["extraction"]], "warn")
    assert not Decision.objects.exists()


@pytest.mark.parametrize(("clause", "action", "duration", "message"), [
    ("research", "suspend", 7, "clause T-3 does not permit the action 'suspend'"),
    ("extraction", "suspend", None, "needs a duration"),
    ("extraction", "warn", 3, "takes no duration"),
    ("extraction", "rate_limit", 400, "1 to 365 days"),
])
def test_the_action_must_be_one_the_clause_permits(claimed, reviewer, policy, clause, action, duration, message):
    with pytest.raises(PolicyViolation, match=message.replace("(", r"\(").replace(")", r"\)")):
        decide(reviewer, claimed, [policy[clause]], action, duration_days=duration)
    assert not Decision.objects.exists() and not OutboxMessage.objects.exists()


def test_clauses_of_a_superseded_version_are_refused(claimed, reviewer, policy):
    from reviewapp.policy.models import PolicyVersion

    old = policy["extraction"].version
    PolicyVersion.objects.create(policy=old.policy, number=2, source_path="t", source_sha256="1" * 64, title="v2",
                                 effective_from=old.effective_from, text="v2")
    with pytest.raises(PolicyViolation, match="not the version in force"):
        decide(reviewer, claimed, [policy["extraction"]], "warn")


def test_every_cited_clause_must_permit_the_action(claimed, reviewer, policy):
    with pytest.raises(PolicyViolation, match="clause T-3 does not permit the action 'rate_limit'"):
        decide(reviewer, claimed, [policy["extraction"], policy["research"]], "rate_limit", duration_days=7)


def test_rationale_and_facts_are_required(claimed, reviewer, policy):
    with pytest.raises(PolicyViolation, match="rationale"):
        decide(reviewer, claimed, [policy["extraction"]], "warn", rationale="  ")
    with pytest.raises(PolicyViolation, match="facts"):
        decide(reviewer, claimed, [policy["extraction"]], "warn", facts_for_holder="")


def test_severe_decisions_wait_for_a_senior_who_is_not_the_decider(claimed, reviewer, policy, make_staff):
    decision = decide(reviewer, claimed, [policy["competing"]], "terminate")
    assert decision.state == Decision.State.AWAITING_APPROVAL
    assert Case.objects.get(pk=claimed.pk).state == Case.State.AWAITING_APPROVAL
    assert not OutboxMessage.objects.exists() and not StatementOfReasons.objects.exists()  # nothing before approval
    with pytest.raises(PermissionDenied, match="senior"):
        decision_approve(approver=make_staff(Role.REVIEWER), decision=decision)
    senior = make_staff(Role.SENIOR_REVIEWER)
    decision = decision_approve(approver=senior, decision=decision)
    decision.refresh_from_db()
    assert decision.state == Decision.State.ENFORCED and decision.approved_by == senior
    assert Account.objects.get(pk=claimed.account_id).enforcement_status == "terminated"
    assert OutboxMessage.objects.filter(kind="enforcement").count() == 1


def test_nobody_approves_their_own_decision(case, policy, make_staff):
    senior = make_staff(Role.SENIOR_REVIEWER)
    case_claim(reviewer=senior, case=case)
    decision = decide(senior, case, [policy["extraction"], policy["competing"]], "suspend", duration_days=30)
    assert decision.state == Decision.State.AWAITING_APPROVAL  # T-2 asks for a second approver
    with pytest.raises(PermissionDenied, match="own decision"):
        decision_approve(approver=senior, decision=decision)
    assert Decision.objects.get().state == Decision.State.AWAITING_APPROVAL


def test_send_back_returns_the_case_with_a_reason(claimed, reviewer, policy, make_staff):
    decision = decide(reviewer, claimed, [policy["competing"]], "terminate")
    senior = make_staff(Role.SENIOR_REVIEWER)
    with pytest.raises(PolicyViolation, match="say why"):
        decision_send_back(approver=senior, decision=decision, reason=" ")
    decision_send_back(approver=senior, decision=decision, reason="Check the researcher programme first.")
    decision.refresh_from_db()
    case = Case.objects.get(pk=claimed.pk)
    assert decision.state == Decision.State.SENT_BACK and case.state == Case.State.IN_REVIEW
    assert case.assignee == reviewer
    again = decide(reviewer, case, [policy["research"]], "no_violation", facts_for_holder="")
    assert again.state == Decision.State.NO_ACTION and not OutboxMessage.objects.exists()


def test_compliance_officers_change_nothing(claimed, reviewer, policy, make_staff):
    officer = make_staff(Role.COMPLIANCE_OFFICER)
    decision = decide(reviewer, claimed, [policy["competing"]], "terminate")
    for attempt in (lambda: decision_approve(approver=officer, decision=decision),
                    lambda: decision_send_back(approver=officer, decision=decision, reason="no"),
                    lambda: case_claim(reviewer=officer, case=claimed),
                    lambda: decide(officer, claimed, [policy["extraction"]], "warn")):
        with pytest.raises(PermissionDenied):
            attempt()
    assert Decision.objects.get().state == Decision.State.AWAITING_APPROVAL


def test_decision_statement_outbox_and_audit_commit_together_or_not_at_all(claimed, reviewer, policy, monkeypatch):
    from reviewapp.cases.services import decisions

    def broken(**kwargs):
        raise RuntimeError("outbox unavailable")

    monkeypatch.setattr(decisions, "outbox_enqueue", broken)
    before = AuditEvent.objects.count()
    with pytest.raises(RuntimeError):
        decide(reviewer, claimed, [policy["extraction"]], "warn")
    assert not Decision.objects.exists() and not StatementOfReasons.objects.exists()
    assert AuditEvent.objects.count() == before
    assert Account.objects.get(pk=claimed.account_id).enforcement_status == "none"
    assert Case.objects.get(pk=claimed.pk).state == Case.State.IN_REVIEW


def test_temporary_actions_are_lifted_when_they_expire(claimed, reviewer, policy):
    decision = decide(reviewer, claimed, [policy["extraction"]], "suspend", duration_days=3)
    assert decisions_lift_expired(now=timezone.now() + timedelta(days=2)) == 0
    assert decisions_lift_expired(now=timezone.now() + timedelta(days=3, minutes=1)) == 1
    decision.refresh_from_db()
    assert decision.state == Decision.State.LIFTED
    assert Account.objects.get(pk=claimed.account_id).enforcement_status == "none"
    lift = OutboxMessage.objects.get(idempotency_key=f"enforcement-lift-{decision.pk}")
    assert lift.payload["event"] == "enforcement.lift"
    assert AuditEvent.objects.filter(action=AuditAction.DECISION_LIFTED, target_id=str(decision.pk)).exists()
    assert decisions_lift_expired(now=timezone.now() + timedelta(days=30)) == 0  # once only


def test_campaign_decision_gives_each_account_its_own_decision_and_spares_researchers(detector, policy, make_staff):
    ingest_and_group(detector, [flag_payload(n, account_id=f"acct_{n}", cluster_id="c-9") for n in range(4)])
    Account.objects.filter(external_id="acct_3").update(researcher_programme=True, contact_email="r@example.org")
    from reviewapp.cases.models import Campaign

    campaign = Campaign.objects.get()
    reviewer = make_staff(Role.REVIEWER)
    result = campaign_decide(reviewer=reviewer, campaign=campaign, account_ids=["acct_0", "acct_1", "acct_3"],
                             researchers_confirmed=set(), clauses=[policy["extraction"]], action="rate_limit",
                             duration_days=14, rationale="One template across the cluster.", facts_for_holder=FACTS)
    assert sorted(d.account.external_id for d in result.decided) == ["acct_0", "acct_1"]
    assert "researcher" in result.skipped["acct_3"]
    assert {d.campaign_run for d in result.decided} == {result.run}
    assert StatementOfReasons.objects.count() == 2
    assert AuditEvent.objects.filter(action=AuditAction.DECISION_RECORDED).count() == 2
    confirmed = campaign_decide(reviewer=reviewer, campaign=campaign, account_ids=["acct_3"],
                                researchers_confirmed={"acct_3"}, clauses=[policy["research"]], action="warn",
                                rationale="Research, but over the agreed volume.", facts_for_holder=FACTS)
    assert [d.action for d in confirmed.decided] == ["warn"]


def test_a_campaign_decision_above_the_threshold_waits_for_second_approval(detector, policy, make_staff, settings):
    """The service, not the page, keeps the limit: more accounts than the threshold and nothing is enforced."""
    settings.CAMPAIGN_DECISION_APPROVAL_THRESHOLD = 2
    ingest_and_group(detector, [flag_payload(n, account_id=f"acct_{n}", cluster_id="c-9") for n in range(6)])
    Account.objects.update(contact_email="holder@example.org")
    Account.objects.filter(external_id="acct_5").update(researcher_programme=True)
    from reviewapp.cases.models import Campaign

    campaign = Campaign.objects.get()
    reviewer, senior = make_staff(Role.REVIEWER), make_staff(Role.SENIOR_REVIEWER)
    arguments = {"reviewer": reviewer, "campaign": campaign, "researchers_confirmed": set(),
                 "clauses": [policy["extraction"]], "action": "rate_limit", "duration_days": 14,
                 "rationale": "One template across the cluster.", "facts_for_holder": FACTS}
    # Two accounts (a repeated id, and an unconfirmed researcher who is left out, do not count): enforced at once.
    small = campaign_decide(account_ids=["acct_0", "acct_1", "acct_1", "acct_5"], **arguments)
    assert {d.state for d in small.decided} == {Decision.State.ENFORCED} and len(small.decided) == 2
    assert OutboxMessage.objects.filter(kind="email").count() == 2

    large = campaign_decide(account_ids=["acct_2", "acct_3", "acct_4"], **arguments)
    assert len(large.decided) == 3 and {d.state for d in large.decided} == {Decision.State.AWAITING_APPROVAL}
    assert OutboxMessage.objects.count() == 4 and StatementOfReasons.objects.count() == 2  # nothing more left
    assert {e.data["campaign_size"] for e in AuditEvent.objects.filter(
        action=AuditAction.DECISION_RECORDED, data__campaign_run=str(large.run))} == {3}
    assert Case.objects.filter(account__external_id="acct_2").get().state == Case.State.AWAITING_APPROVAL
    with pytest.raises(PermissionDenied):
        decision_approve(approver=reviewer, decision=large.decided[0])
    decision_approve(approver=senior, decision=large.decided[0])
    assert Decision.objects.get(pk=large.decided[0].pk).state == Decision.State.ENFORCED


# ── Invariant checks that a mutation once removed unnoticed (issue 9) ─────────────────────────────────

def test_a_decision_on_a_lapsed_claim_is_refused(claimed, reviewer, policy):
    Case.objects.filter(pk=claimed.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(PermissionDenied, match="lapsed; claim it again"):
        decide(reviewer, claimed, [policy["extraction"]], "warn")
    assert not Decision.objects.exists() and not OutboxMessage.objects.exists()
    assert Case.objects.get(pk=claimed.pk).state == Case.State.IN_REVIEW


def test_the_account_shows_its_strongest_live_action_not_its_latest_or_weakest(claimed, reviewer, policy, detector):
    decide(reviewer, claimed, [policy["extraction"]], "suspend", duration_days=30)
    [second] = [c for c in ingest_and_group(detector, [flag_payload(3, account_id="acct_1")]) if c.is_open]
    case_claim(reviewer=reviewer, case=second)
    decide(reviewer, second, [policy["extraction"]], "warn")
    assert Decision.objects.filter(account=claimed.account, state=Decision.State.ENFORCED).count() == 2
    assert Account.objects.get(pk=claimed.account_id).enforcement_status == "suspended"


def test_the_evidence_permission_ends_with_the_decision(claimed, reviewer, policy):
    from flags.evidence import evidence_open
    from reviewapp.cases.models import CaseUserObjectPermission

    assert evidence_open(user=reviewer, case=claimed, context="review")
    decide(reviewer, claimed, [policy["extraction"]], "warn")
    assert not CaseUserObjectPermission.objects.filter(content_object=claimed, user=reviewer).exists()
    fresh = type(reviewer).objects.get(pk=reviewer.pk)  # no cached permissions
    with pytest.raises(PermissionDenied):
        evidence_open(user=fresh, case=claimed, context="after the decision")


def test_a_sent_back_case_gets_a_fresh_lease_even_if_the_claim_lapsed_during_approval(
        claimed, reviewer, policy, make_staff):
    decision = decide(reviewer, claimed, [policy["competing"]], "terminate")
    # The senior took longer than the claim's lease to look at it.
    Case.objects.filter(pk=claimed.pk).update(lease_expires_at=timezone.now() - timedelta(minutes=5))
    decision_send_back(approver=make_staff(Role.SENIOR_REVIEWER), decision=decision, reason="Check T-3 first.")
    case = Case.objects.get(pk=claimed.pk)
    assert case.lease_expires_at > timezone.now() + timedelta(hours=23)
    again = decide(reviewer, case, [policy["research"]], "no_violation", facts_for_holder="")
    assert again.state == Decision.State.NO_ACTION
