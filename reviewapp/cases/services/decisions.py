"""Decisions under policy, second approval, enforcement, and the lifting of temporary actions.

Invariant 4: a decision cites clauses of the policy version in force and takes an action one of them
permits. Invariant 5: nobody approves their own decision. Invariant 7: enforcement and the holder's
notice leave only through the outbox, written in the same transaction as the decision's change.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.services import SYSTEM, record
from reviewapp.limits import ensure_within_limits
from reviewapp.outbox.services import outbox_enqueue
from reviewapp.policy.enforcement import TIMED_ACTIONS, Action
from reviewapp.policy.models import Clause, PolicyVersion
from reviewapp.policy.selectors import version_in_force

from ..holders import holder_link_issue
from ..models import Account, Campaign, Case, Decision, HolderLink, StatementOfReasons, open_case
from ..statements import statement_content, statement_email
from ..workflow import DECISION_TRANSITIONS, InvalidDecisionTransition, decision_move_check, transition_apply
from . import case_transition
from .claims import EVIDENCE_PERMISSION, ClaimError, _hand_over, case_claim

MAX_DURATION_DAYS = 365
ACCOUNT_STATUS = {
    Action.WARN: Account.EnforcementStatus.WARNED,
    Action.RATE_LIMIT: Account.EnforcementStatus.RATE_LIMITED,
    Action.SUSPEND: Account.EnforcementStatus.SUSPENDED,
    Action.TERMINATE: Account.EnforcementStatus.TERMINATED,
}


class PolicyViolation(ValueError):
    """A decision the policy does not allow; the message names the clause and the problem."""


class DecisionNotAwaitingApproval(PolicyViolation):
    """The decision was approved or sent back meanwhile: a conflict with its state (the API's 409), not a problem
    with what was sent. Two senior reviewers acting on the same decision at once meet this (`make load`)."""


def _check_clauses(clauses: list[Clause], action: str, duration_days: int | None) -> PolicyVersion:
    if not clauses:
        raise PolicyViolation("cite at least one clause")
    versions = {clause.version_id for clause in clauses}
    if len(versions) != 1:
        raise PolicyViolation("all cited clauses must come from one policy version")
    version = clauses[0].version
    in_force = version_in_force(version.policy.slug)
    if in_force is None or in_force.pk != version.pk:
        now_in_force = f"v{in_force.number} is" if in_force else "none is yet"
        raise PolicyViolation(f"{version} is not the version in force ({now_in_force}); cite the clauses in force")
    # Every cited clause must permit the action: a statement must never ground an action on a clause
    # that does not allow it.
    refusing = [clause.ref for clause in clauses if action not in clause.permitted_actions]
    if refusing:
        raise PolicyViolation(f"clause {', '.join(refusing)} does not permit the action '{action}'")
    if Action(action) in TIMED_ACTIONS:
        if not duration_days or not 1 <= duration_days <= MAX_DURATION_DAYS:
            raise PolicyViolation(f"'{action}' needs a duration of 1 to {MAX_DURATION_DAYS} days")
    elif duration_days:
        raise PolicyViolation(f"'{action}' takes no duration")
    return version


def needs_second_approval(action: str, clauses: list[Clause]) -> bool:
    """Any termination, and any action (but "no violation") under a clause marked for a second approver."""
    if action == Action.NO_VIOLATION:
        return False
    return action == Action.TERMINATE or any(clause.requires_second_approval for clause in clauses)


def campaign_needs_second_approval(size: int) -> bool:
    """A campaign decision on more accounts than the configured threshold needs a senior's second approval."""
    return size > settings.CAMPAIGN_DECISION_APPROVAL_THRESHOLD


@transaction.atomic
def decision_record(*, reviewer, case: Case, clauses: list[Clause], action: str, rationale: str,
                    facts_for_holder: str = "", duration_days: int | None = None,
                    campaign_run: uuid.UUID | None = None, campaign_size: int = 1) -> Decision:
    """Record a reviewer's decision on a case they have claimed.

    Severe decisions (any ``terminate``, or a clause marked for second approval) wait for a senior
    reviewer; nothing is enforced or told to the holder before that. Others are enforced at once.
    So does every decision of a campaign decision on more than CAMPAIGN_DECISION_APPROVAL_THRESHOLD
    accounts (``campaign_size``, see campaign_decide).
    """
    case = Case.objects.select_for_update(no_key=True).select_related("account").get(pk=case.pk)
    ensure_can_decide(reviewer, case, now=timezone.now())
    action = Action(action)
    version = _check_clauses(clauses, action, duration_days)
    if not rationale.strip():
        raise PolicyViolation("write the rationale")
    ensure_within_limits(Decision, error=PolicyViolation, rationale=rationale.strip(),
                         facts_for_holder=facts_for_holder.strip())
    if action != Action.NO_VIOLATION and not facts_for_holder.strip():
        raise PolicyViolation("write the facts the account holder will be told")
    severe = needs_second_approval(action, clauses) or (
        action != Action.NO_VIOLATION and campaign_needs_second_approval(campaign_size))
    decision = _decision_create(
        case=case, account=case.account, policy_version=version, action=action, duration_days=duration_days,
        rationale=rationale.strip(), facts_for_holder=facts_for_holder.strip(), decided_by=reviewer,
        campaign_run=campaign_run, clauses=clauses,
        state=Decision.State.AWAITING_APPROVAL if severe else _state_in_effect(action))
    record(actor=reviewer, action=AuditAction.DECISION_RECORDED, target=decision, data={
        "case": case.pk, "account": case.account.external_id, "policy_version": str(version),
        "clauses": [clause.ref for clause in clauses], "action": action.value, "duration_days": duration_days,
        "second_approval": severe, "campaign_run": campaign_run,
        **({"campaign_size": campaign_size} if campaign_run else {}),
    })
    if severe:
        case_transition(case=case, to=Case.State.AWAITING_APPROVAL, actor=reviewer, reason=f"decision {decision.pk}")
    else:
        _enforce(decision, actor=reviewer)
    return decision


def ensure_can_decide(reviewer, case: Case, *, now: datetime) -> None:
    """Only a reviewer holding a live claim on the case decides it (PermissionDenied otherwise).

    (The checks of a service live in plain functions like this one, not in its ``@transaction.atomic``
    body: mutmut does not mutate decorated functions, and ``make mutation`` must reach every check.)
    """
    if not reviewer.has_perm("cases.claim_case"):
        raise PermissionDenied("Your role does not decide cases.")
    if case.assignee_id != reviewer.pk or case.state != Case.State.IN_REVIEW:
        raise PermissionDenied(f"Claim case {case.pk} before deciding it.")
    if not case.claim_live_at(now):
        raise PermissionDenied(f"Your claim on case {case.pk} lapsed; claim it again.")


def _state_in_effect(action: str) -> str:
    """The state of a decision that takes effect: enforced, or "no violation" (which restricts nothing)."""
    return Decision.State.NO_ACTION if action == Action.NO_VIOLATION else Decision.State.ENFORCED


def _in_effect_from(decision: Decision, now: datetime) -> tuple[str, ...]:
    """Set when an enforced decision takes effect and ends; the fields to save with its state."""
    decision.effective_at = now
    decision.ends_at = now + timedelta(days=decision.duration_days) if decision.duration_days else None
    return ("effective_at", "ends_at")


def _decision_create(*, state: str, clauses: list[Clause], **fields) -> Decision:
    """A new decision, recorded in a state workflow.DECISION_START allows (an enforced one in effect from now)."""
    decision = Decision(state="", **fields)
    decision_move_check(decision, state)
    decision.state = state
    if state == Decision.State.ENFORCED:
        _in_effect_from(decision, timezone.now())
    decision.save()
    decision.clauses.set(clauses)
    return decision


@transaction.atomic
def decision_transition(*, decision: Decision, to: str, actor, reason: str, fields: tuple[str, ...] = ()) -> Decision:
    """Move a decision along workflow.DECISION_TRANSITIONS; anything else raises InvalidDecisionTransition
    and changes nothing.

    The one home of a decision's state change and its ``decision.transitioned`` event. The caller holds the
    row lock (``select_for_update``) and passes that instance; its other changed ``fields`` are saved with
    the state.
    """
    return transition_apply(decision, table=DECISION_TRANSITIONS, error=InvalidDecisionTransition,
                            to=Decision.State(to), actor=actor, action=AuditAction.DECISION_TRANSITIONED,
                            reason=reason, fields=fields)


def _decision_for_approver(approver, decision: Decision) -> Decision:
    decision = Decision.objects.select_for_update().select_related("case", "account").get(pk=decision.pk)
    if not approver.has_perm("cases.approve_decision"):
        raise PermissionDenied("Only senior reviewers give second approval.")
    if decision.decided_by_id == approver.pk:
        raise PermissionDenied("Nobody approves their own decision.")
    if decision.state != Decision.State.AWAITING_APPROVAL:
        raise DecisionNotAwaitingApproval(f"decision {decision.pk} is not awaiting approval")
    return decision


@transaction.atomic
def decision_approve(*, approver, decision: Decision) -> Decision:
    """Second approval by a senior reviewer who is not the decider; the decision is then enforced."""
    decision = _decision_for_approver(approver, decision)
    decision.approved_by, decision.approved_at = approver, timezone.now()
    record(actor=approver, action=AuditAction.DECISION_APPROVED, target=decision, data={"case": decision.case_id})
    decision_transition(decision=decision, to=_state_in_effect(decision.action), actor=approver, reason="approved",
                        fields=("approved_by", "approved_at", *_in_effect_from(decision, decision.approved_at)))
    _enforce(decision, actor=approver)
    return decision


@transaction.atomic
def decision_send_back(*, approver, decision: Decision, reason: str) -> Decision:
    """Return a decision to its reviewer with a reason; nothing is enforced."""
    decision = _decision_for_approver(approver, decision)
    if not reason.strip():
        raise PolicyViolation("say why the decision is sent back")
    ensure_within_limits(Decision, error=PolicyViolation, sent_back_reason=reason.strip())
    decision.sent_back_reason = reason.strip()
    decision_transition(decision=decision, to=Decision.State.SENT_BACK, actor=approver, reason="sent back",
                        fields=("sent_back_reason",))
    record(actor=approver, action=AuditAction.DECISION_SENT_BACK, target=decision,
           data={"case": decision.case_id, "reason": decision.sent_back_reason})
    _case_back_to_decider(decision, actor=approver)
    return decision


SEND_BACK_LEASE = timedelta(hours=24)


def _case_back_to_decider(decision: Decision, *, actor) -> None:
    """A sent-back case returns to review; the decider keeps it, with a fresh lease, to reconsider it
    (even if the claim lapsed while the decision waited for approval)."""
    case = case_transition(case=decision.case, to=Case.State.IN_REVIEW, actor=actor, reason="sent back")
    Case.objects.filter(pk=case.pk).update(lease_expires_at=timezone.now() + SEND_BACK_LEASE)


def _enforce(decision: Decision, *, actor, move_case: bool = True) -> None:
    """Carry out a decision that has taken effect (its state moved already): for an enforced one the
    account's status, the enforcement webhook, the statement and the notice; then the case is decided."""
    case, account = decision.case, decision.account
    if decision.state == Decision.State.ENFORCED:
        now = decision.effective_at
        _account_status_refresh(account)
        outbox_enqueue(kind="enforcement", target=decision, idempotency_key=f"enforcement-apply-{decision.pk}",
                       payload=_enforcement_payload(decision, event="enforcement.apply"))
        statement = _statement_issue(decision, now=now)
        if account.contact_email:
            outbox_enqueue(kind="email", target=statement, idempotency_key=f"statement-notice-{statement.pk}",
                           payload=statement_email(statement, to=account.contact_email, sign_in_url=holder_link_issue(
                               account=account, purpose=HolderLink.Purpose.NOTICE)))
        record(actor=actor, action=AuditAction.DECISION_ENFORCED, target=decision, data={
            "account": account.external_id, "action": decision.action, "ends_at": decision.ends_at,
            "statement": statement.pk, "notified": bool(account.contact_email)})
    if move_case:  # (an appeal's replacement decision belongs to a case decided long ago)
        case_transition(case=case, to=Case.State.DECIDED, actor=actor, reason=f"decision {decision.pk}")
        _hand_over(case.pk, to=None, previous_id=case.assignee_id)  # the claim ends with the decision


def _enforcement_payload(decision: Decision, *, event: str) -> dict:
    return {
        "event": event,
        "decision_id": decision.pk,
        "account_id": decision.account.external_id,
        "action": decision.action,
        "effective_at": decision.effective_at.isoformat() if decision.effective_at else None,
        "ends_at": decision.ends_at.isoformat() if decision.ends_at else None,
        "clauses": sorted(clause.ref for clause in decision.clauses.all()),
        "policy_version": str(decision.policy_version),
    }


def _statement_issue(decision: Decision, *, now: datetime) -> StatementOfReasons:
    window = max(clause.appeal_window_days for clause in decision.clauses.all())
    statement = StatementOfReasons.objects.create(
        decision=decision, issued_at=now, appeal_deadline=now + timedelta(days=window),
        content=statement_content(decision, issued_at=now, appeal_deadline=now + timedelta(days=window)),
    )
    record(actor=SYSTEM, action=AuditAction.STATEMENT_ISSUED, target=statement,
           data={"decision": decision.pk, "appeal_deadline": statement.appeal_deadline})
    return statement


# The rows a lift or a reversal locks: the decision and its account, never the policy version it reads along
# (published versions are immutable, and the application's database role may not lock them: README
# "Database roles").
_LOCKED = ("self", "account")


@transaction.atomic
def decisions_lift_expired(*, now: datetime | None = None) -> int:
    """Periodic (beat): lift temporary actions whose time is up, through the outbox, and audit each."""
    now = now or timezone.now()
    due = list(Decision.objects.select_for_update(skip_locked=True, of=_LOCKED)
               .select_related("account", "policy_version").filter(state=Decision.State.ENFORCED, ends_at__lte=now))
    for decision in due:
        decision.lifted_at = now
        decision_transition(decision=decision, to=Decision.State.LIFTED, actor=SYSTEM, reason="expired",
                            fields=("lifted_at",))
        _account_status_refresh(decision.account)
        outbox_enqueue(kind="enforcement", target=decision, idempotency_key=f"enforcement-lift-{decision.pk}",
                       payload=_enforcement_payload(decision, event="enforcement.lift"))
        record(actor=SYSTEM, action=AuditAction.DECISION_LIFTED, target=decision,
               data={"account": decision.account.external_id, "action": decision.action, "ended_at": decision.ends_at})
    return len(due)


def _account_status_refresh(account: Account) -> None:
    """The account's status is that of its strongest action still in force (none when nothing is)."""
    from reviewapp.policy.enforcement import SEVERITY_ORDER

    live = Decision.objects.filter(account=account, state=Decision.State.ENFORCED).values_list("action", flat=True)
    strongest = max(live, key=lambda a: SEVERITY_ORDER.index(Action(a)), default=None)
    status = ACCOUNT_STATUS[Action(strongest)] if strongest else Account.EnforcementStatus.NONE
    Account.objects.filter(pk=account.pk).update(enforcement_status=status)


@dataclass
class CampaignDecisionResult:
    run: uuid.UUID
    decided: list[Decision] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # account external id → why


def campaign_decide(*, reviewer, campaign: Campaign, account_ids: list[str], researchers_confirmed: set[str],
                    clauses: list[Clause], action: str, rationale: str, facts_for_holder: str = "",
                    duration_days: int | None = None) -> CampaignDecisionResult:
    """One decision applied to selected accounts of a campaign: each account gets its own decision,
    audit event and statement; four-eyes applies to each. Researcher-programme accounts are skipped
    unless confirmed one by one in ``researchers_confirmed``. Each account is decided in its own
    transaction, so one that cannot be decided (claimed by someone else, already decided) is reported
    and does not stop the others.

    Blast radius: when the decision would act on more than CAMPAIGN_DECISION_APPROVAL_THRESHOLD accounts
    (those chosen that have an open case here and are not researchers left out), every one of its
    decisions waits for a senior reviewer's second approval, exactly like a severe decision. This reuses
    the per-decision four-eyes state (AWAITING_APPROVAL, decision_approve / decision_send_back, the
    Approvals page) rather than adding a campaign-level approval object: each account keeps its own
    statement, appeal and enforcement, so its approval belongs to it too, and nothing new can drift out
    of step with the decisions it stands for. The size is counted here, from the database, not taken from
    the form. "No violation" restricts nothing and tells nobody, so it needs no approval at any size.
    """
    result = CampaignDecisionResult(run=uuid.uuid4())
    account_ids = list(dict.fromkeys(account_ids))  # a repeated id is one account, counted once
    cases = {c.account.external_id: c for c in Case.objects.select_related("account")
             .filter(open_case(), campaign=campaign, account__external_id__in=account_ids)}
    eligible = [a for a in account_ids if a in cases
                and (not cases[a].account.researcher_programme or a in researchers_confirmed)]
    for account_id in account_ids:
        case = cases.get(account_id)
        if case is None:
            result.skipped[account_id] = "no open case in this campaign"
            continue
        if case.account.researcher_programme and account_id not in researchers_confirmed:
            result.skipped[account_id] = "researcher-programme account: confirm it individually"
            continue
        try:
            with transaction.atomic():
                case_claim(reviewer=reviewer, case=case)
                result.decided.append(decision_record(
                    reviewer=reviewer, case=case, clauses=clauses, action=action, rationale=rationale,
                    facts_for_holder=facts_for_holder, duration_days=duration_days, campaign_run=result.run,
                    campaign_size=len(eligible)))
        except (ClaimError, PermissionDenied, PolicyViolation) as exc:
            result.skipped[account_id] = str(exc)
    return result


__all__ = [
    "EVIDENCE_PERMISSION",
    "PolicyViolation",
    "campaign_decide",
    "campaign_needs_second_approval",
    "decision_approve",
    "decision_record",
    "decision_send_back",
    "decision_transition",
    "decisions_lift_expired",
    "needs_second_approval",
]


# --- Appeal outcomes (called by the appeals app) -----------------------------------------------------

@transaction.atomic
def decision_reverse_on_appeal(*, decision: Decision, actor, appeal_id: int, reason: str) -> Decision:
    """Undo a decision an appeal overturned (or replaced): enforcement reversed through the outbox, the
    account's status follows, and ``events.decision_overturned`` is sent (documented in events.py)."""
    from ..events import decision_overturned

    decision = (Decision.objects.select_for_update(of=_LOCKED).select_related("account", "policy_version")
                .get(pk=decision.pk))
    if Decision.State.REVERSED not in DECISION_TRANSITIONS[decision.state]:
        raise PolicyViolation(f"decision {decision.pk} is {decision.get_state_display().lower()}; "
                              "only an enforced or lifted decision can be reversed")
    was_live = decision.state == Decision.State.ENFORCED
    decision_transition(decision=decision, to=Decision.State.REVERSED, actor=actor, reason=f"appeal {appeal_id}")
    _account_status_refresh(decision.account)
    if was_live:
        outbox_enqueue(kind="enforcement", target=decision, idempotency_key=f"enforcement-reverse-{decision.pk}",
                       payload=_enforcement_payload(decision, event="enforcement.reverse"))
    record(actor=actor, action=AuditAction.DECISION_REVERSED, target=decision,
           data={"appeal": appeal_id, "reason": reason, "was_in_force": was_live})
    decision_overturned.send(sender=Decision, decision=decision, appeal_id=appeal_id, actor=actor)
    return decision


@transaction.atomic
def decision_replace_on_appeal(*, original: Decision, reviewer, clauses: list[Clause], action: str,
                               facts_for_holder: str, rationale: str, appeal_id: int,
                               duration_days: int | None = None) -> Decision:
    """An appeal "modified" outcome: a lesser action, under the same or another clause in force, replaces
    the original (which is reversed). The replacement is enforced with its own statement and notice."""
    from reviewapp.policy.enforcement import is_lesser

    if not is_lesser(action, original.action):
        raise PolicyViolation(f"'{action}' is not a lesser action than '{original.action}'")
    version = _check_clauses(clauses, Action(action), duration_days)
    if not facts_for_holder.strip() or not rationale.strip():
        raise PolicyViolation("write the rationale and the facts the account holder will be told")
    ensure_within_limits(Decision, error=PolicyViolation, rationale=rationale.strip(),
                         facts_for_holder=facts_for_holder.strip())
    decision_reverse_on_appeal(decision=original, actor=reviewer, appeal_id=appeal_id, reason="replaced on appeal")
    replacement = _decision_create(
        case=original.case, account=original.account, policy_version=version, action=action,
        duration_days=duration_days, rationale=rationale.strip(), facts_for_holder=facts_for_holder.strip(),
        decided_by=reviewer, state=_state_in_effect(action), clauses=clauses,
    )
    record(actor=reviewer, action=AuditAction.DECISION_RECORDED, target=replacement, data={
        "case": original.case_id, "replaces": original.pk, "appeal": appeal_id, "action": action,
        "clauses": [clause.ref for clause in clauses], "duration_days": duration_days})
    _enforce(replacement, actor=reviewer, move_case=False)
    return replacement
