"""Reads for the appeals portal (always scoped to the signed-in holder's account) and appeal review."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, F, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.cases.models import Account, Decision, StatementOfReasons

from .models import Appeal, AppealAttachment

NOTIFIED_STATES = (Decision.State.ENFORCED, Decision.State.LIFTED, Decision.State.REVERSED)


# --- The holder's own things. Every portal read goes through one of these: another account's
# statement, decision, appeal or attachment is simply not found (404), never "forbidden".

def holder_decisions(account: Account) -> QuerySet[Decision]:
    """The decisions the holder was told about (those with a statement of reasons), newest first."""
    return (Decision.objects.filter(account=account, statement__isnull=False)
            .select_related("statement", "policy_version__policy").prefetch_related("clauses", "appeals")
            .order_by("-decided_at"))


def holder_statement_or_404(account: Account, pk: int) -> StatementOfReasons:
    statement = StatementOfReasons.objects.select_related("decision").filter(pk=pk, decision__account=account).first()
    if statement is None:
        raise Http404("No such statement.")
    return statement


def holder_decision_or_404(account: Account, pk: int) -> Decision:
    decision = holder_decisions(account).filter(pk=pk).first()
    if decision is None:
        raise Http404("No such decision.")
    return decision


def holder_appeals(account: Account) -> QuerySet[Appeal]:
    return Appeal.objects.filter(account=account).select_related("decision", "decision__statement")


def holder_appeal_or_404(account: Account, pk: int) -> Appeal:
    appeal = holder_appeals(account).prefetch_related("messages", "attachments").filter(pk=pk).first()
    if appeal is None:
        raise Http404("No such appeal.")
    return appeal


def holder_attachment_or_404(account: Account, pk: int) -> AppealAttachment:
    attachment = AppealAttachment.objects.filter(pk=pk, appeal__account=account).first()
    if attachment is None:
        raise Http404("No such attachment.")
    return attachment


@dataclass(frozen=True)
class AppealWindow:
    """Whether the holder can appeal a decision now: before the statement's deadline, with no open appeal
    against it (as ``appeal_file`` judges), and not already reversed (nothing is left to contest)."""

    deadline: datetime
    closed: bool
    open_appeal: Appeal | None
    reversed: bool = False

    @property
    def can_appeal(self) -> bool:
        return not self.closed and self.open_appeal is None and not self.reversed


def holder_appeal_window(decision: Decision, *, now: datetime | None = None) -> AppealWindow:
    """The appeal window of one of the holder's decisions (from ``holder_decisions``: appeals are prefetched)."""
    now = now or timezone.now()
    deadline = decision.statement.appeal_deadline
    open_appeal = next((appeal for appeal in decision.appeals.all() if appeal.is_open), None)
    return AppealWindow(deadline=deadline, closed=now > deadline, open_appeal=open_appeal,
                        reversed=decision.state == Decision.State.REVERSED)


# --- Staff side

def decisions_taken_part_in(user, decisions) -> set[int]:
    """Of ``decisions``, the ids of those the person took part in (invariant 5): they decided or approved
    a decision of its case, claimed the case, or sent a decision of the case back.

    The whole case counts, not only the final decision: whoever sent back an earlier draft, or decided
    one, reviewed this decision too. The audit trail is the record of who touched the case, so it answers
    for claims and send-backs. Two queries, whatever the number of decisions (the queue marks each row).
    """
    decisions = list(decisions)
    case_ids = {decision.case_id for decision in decisions}
    of_cases = list(Decision.objects.filter(case_id__in=case_ids)
                    .values_list("pk", "case_id", "decided_by_id", "approved_by_id"))
    case_of = {pk: case_id for pk, case_id, _, _ in of_cases}
    touched = {case_id for _, case_id, decider, approver in of_cases if user.pk in (decider, approver)}
    events = AuditEvent.objects.filter(
        Q(action=AuditAction.CASE_CLAIMED, target_type="cases.case", target_id__in=[str(pk) for pk in case_ids])
        | Q(action__in=[AuditAction.DECISION_SENT_BACK, AuditAction.DECISION_APPROVED],
            target_type="cases.decision", target_id__in=[str(pk) for pk in case_of]),
        actor_type="user", actor_id=str(user.pk),
    ).values_list("target_type", "target_id")
    for target_type, target_id in events:
        touched.add(int(target_id) if target_type == "cases.case" else case_of[int(target_id)])
    return {decision.pk for decision in decisions if decision.case_id in touched}


def took_part(user, decision: Decision) -> bool:
    """Whether a person decided, approved or reviewed the decision (see ``decisions_taken_part_in``)."""
    return bool(decisions_taken_part_in(user, [decision]))


# The appeals queue's order, for the page and the API's cursor alike: the review due soonest first
# (review_due_at = filed_at + REVIEW_SLA, so filing order is the same order), then by id, stable as appeals arrive.
APPEALS_QUEUE_ORDER = ("filed_at", "id")


def appeals_queue() -> QuerySet[Appeal]:
    """Open appeals, the review due soonest first (``Appeal.review_due_at``: decided without undue delay), not
    the holder's filing deadline, which says when an appeal could still be filed, not when it must be decided."""
    return (Appeal.objects.filter(state__in=Appeal.OPEN_STATES)
            .select_related("decision", "account", "reviewer").prefetch_related("decision__clauses")
            .order_by(*APPEALS_QUEUE_ORDER))


def appeals_recently_decided(limit: int = 20) -> QuerySet[Appeal]:
    """The latest decided appeals (staff follow up on them from the queue page)."""
    return (Appeal.objects.filter(state=Appeal.State.DECIDED)
            .select_related("decision", "account", "reviewer").order_by("-decided_at", "-pk")[:limit])


def appeal_for_staff_or_404(pk: int) -> Appeal:
    appeal = (Appeal.objects.select_related("decision__case", "decision__statement", "decision__decided_by",
                                            "decision__approved_by", "account", "reviewer", "replacement")
              .prefetch_related("messages", "attachments", "decision__clauses").filter(pk=pk).first())
    if appeal is None:
        raise Http404("No such appeal.")
    return appeal


# How overturn rates group what appeals itself knows. By detector needs the case's flags, which appeals never
# reads (DESIGN.md: dependencies run one way): reviewapp.core.selectors.overturn_rates composes that grouping.
OVERTURN_GROUPS = {
    "clause": "decision__clauses__ref",
    "reviewer": "decision__decided_by__username",
}


def overturn_rates(*, by: str) -> list[dict]:
    """Decided appeals and the share overturned or modified, grouped by clause or reviewer (``OVERTURN_GROUPS``).

    Rows: {"key", "decided", "overturned", "modified", "rate"} (rate = (overturned + modified) / decided).
    """
    if by not in OVERTURN_GROUPS:
        raise ValueError(f"overturn rates are grouped by one of {sorted(OVERTURN_GROUPS)}, not {by!r}")
    return overturn_rates_of(Appeal.objects.values(key=F(OVERTURN_GROUPS[by])))


def overturn_rates_of(keyed: QuerySet) -> list[dict]:
    """The overturn rates of decided appeals grouped by ``key`` (``keyed`` is ``Appeal.objects.values(key=…)``):
    the one definition of the counts and the rate, for groupings composed above appeals too."""
    rows = (keyed.filter(state=Appeal.State.DECIDED)
            .annotate(decided=Count("pk", distinct=True),
                      overturned=Count("pk", filter=Q(outcome=Appeal.Outcome.OVERTURNED), distinct=True),
                      modified=Count("pk", filter=Q(outcome=Appeal.Outcome.MODIFIED), distinct=True))
            .order_by("key"))
    return [{**row, "rate": (row["overturned"] + row["modified"]) / row["decided"]} for row in rows if row["decided"]]
