"""Reads of cases, scoped by what the reader may see.

Nothing here reads flags: they sit a layer up (DESIGN.md: dependencies run one way). A case's flags, their
timeline and provenance are ``flags.selectors``; the pages and API answers that show them are composed there.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import (
    Count,
    Exists,
    OuterRef,
    Q,
    QuerySet,
)
from django.utils import timezone

from .models import CLAIMABLE_STATES, Campaign, Case, Decision, claimable
from .vocabulary import Queue


def cases_visible_to(user) -> QuerySet[Case]:
    """Case summaries for staff holding ``cases.view_case``; nothing for anyone else.

    Summaries carry no raw evidence: opening excerpts is a separate, audited act (invariant 2).
    """
    if not user.has_perm("cases.view_case"):
        raise PermissionDenied("Your role cannot read cases.")
    return Case.objects.select_related("account", "campaign")


def can_open_evidence(user, case: Case) -> bool:
    """Who may see raw prompt excerpts: the case's assignee while the claim is live (object permission),
    senior reviewers approving a decision on it, and compliance officers (global permission)."""
    if user.has_perm("cases.view_case_evidence"):  # global: compliance reads everything
        return True
    if case.state == Case.State.AWAITING_APPROVAL and user.has_perm("cases.approve_decision"):
        return True
    return user.has_perm("cases.view_case_evidence", case) and case.assignee_id == user.pk


def clauses_in_force_by_ref(refs: list[str]):
    """The clauses with these refs among those a decision may cite today."""
    from reviewapp.policy.selectors import clauses_in_force

    return list(clauses_in_force().filter(ref__in=refs))


def pending_decision_of(case: Case):
    """The decision of a case that awaits second approval; 404 when there is none."""
    from django.shortcuts import get_object_or_404

    from .models import Decision

    return get_object_or_404(Decision, case=case, state=Decision.State.AWAITING_APPROVAL)


# ── Reads for the reviewer pages (queues, the case workspace, approvals, campaigns) ──────────────────────


def queue_overview(user, *, now=None) -> list[dict]:
    """Each queue with its open, unclaimed (new, or the claim lapsed) and overdue (SLA passed) cases."""
    now = now or timezone.now()
    rows = (cases_visible_to(user).filter(state__in=Case.OPEN_STATES).order_by().values("queue")
            .annotate(open=Count("pk"),
                      unclaimed=Count("pk", filter=claimable(now)),
                      overdue=Count("pk", filter=Q(sla_due_at__lt=now))))
    counts = {row["queue"]: row for row in rows}
    return [{"queue": queue, "open": counts.get(queue.value, {}).get("open", 0),
             "unclaimed": counts.get(queue.value, {}).get("unclaimed", 0),
             "overdue": counts.get(queue.value, {}).get("overdue", 0)} for queue in Queue]


def queue_cases(user, queue: str, *, signal: str = "", campaign_id: int | None = None,
                priority_min: int | None = None, account: str = "") -> QuerySet[Case]:
    """The open cases of a queue as reviewers work them: highest priority first, then oldest."""
    cases = cases_visible_to(user).select_related("assignee").filter(queue=queue, state__in=Case.OPEN_STATES)
    if signal:
        cases = cases.filter(signals__contains=[signal])
    if campaign_id:
        cases = cases.filter(campaign_id=campaign_id)
    if priority_min is not None:
        cases = cases.filter(priority__gte=priority_min)
    if account:
        cases = cases.filter(account__external_id__icontains=account)
    return cases.order_by("-priority", "opened_at", "id")


CAMPAIGN_CHOICES = 100  # campaigns offered by a queue's filter


def campaigns_in_queue(queue: str, *, also: int | None = None, limit: int | None = None) -> list[Campaign]:
    """The newest ``limit`` campaigns with an open case in the queue, by name, and campaign ``also`` (the one a
    link or the filter chose) whatever its age.

    Bounded however many cases and campaigns the queue holds: campaigns are walked newest first by primary key,
    each tried through its open cases' index until ``limit`` are found (a DISTINCT over the queue's open cases
    grew with them: 63 ms at 100,000, and a select of 12,000 options at 1,000,000; docs/scale-plans.md).
    """
    has_open_case = Case.objects.filter(campaign=OuterRef("pk"), queue=queue, state__in=Case.OPEN_STATES)
    campaigns = list(Campaign.objects.filter(Exists(has_open_case)).order_by("-pk")[:limit or CAMPAIGN_CHOICES])
    if also is not None and all(campaign.pk != also for campaign in campaigns):
        campaigns += list(Campaign.objects.filter(Exists(has_open_case), pk=also))
    return sorted(campaigns, key=lambda campaign: (campaign.name, campaign.pk))


def can_claim(user, case: Case, *, now=None) -> bool:
    """Whether the claim button means anything: mirrors the refusals of services.claims.case_claim."""
    if not user.has_perm("cases.claim_case") or case.state not in CLAIMABLE_STATES:
        return False
    return case.state == Case.State.NEW or case.assignee_id == user.pk or not case.claim_live_at(now or timezone.now())


def can_decide(user, case: Case, *, now=None) -> bool:
    """Whether the decision form is offered: mirrors the refusals of services.decisions.decision_record."""
    return (user.has_perm("cases.claim_case") and case.assignee_id == user.pk
            and case.claim_live_at(now or timezone.now()))


def decisions_of_account(account) -> QuerySet:
    """An account's decisions, newest first, with their statements and clauses (its enforcement history)."""
    return (Decision.objects.filter(account=account).select_related("decided_by", "approved_by", "statement",
                                                                    "policy_version")
            .prefetch_related("clauses").order_by("-decided_at"))


def campaign_cases(campaign) -> QuerySet[Case]:
    """The campaign's cases, one row per case, accounts in order."""
    return (Case.objects.filter(campaign=campaign).select_related("account", "assignee")
            .order_by("account__external_id", "-opened_at"))


def decisions_awaiting_approval(user) -> QuerySet:
    """Decisions waiting for a second approver, oldest first, without the ones ``user`` took (invariant 5)."""
    return (Decision.objects.filter(state=Decision.State.AWAITING_APPROVAL).exclude(decided_by=user)
            .select_related("case", "account", "decided_by").prefetch_related("clauses").order_by("decided_at"))


def decision_sent_back_event(decision: Decision):
    """Who sent a decision back, and when: the audit trail's record of it (the decision keeps only the reason)."""
    from reviewapp.audit.actions import AuditAction
    from reviewapp.audit.models import AuditEvent

    return (AuditEvent.objects.filter(action=AuditAction.DECISION_SENT_BACK, target_type=Decision._meta.label_lower,
                                      target_id=str(decision.pk)).order_by("-created_at").first())
