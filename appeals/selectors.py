"""Reads for the appeals portal (always scoped to the signed-in holder's account) and appeal review."""

from __future__ import annotations

from django.db.models import Count, F, Q, QuerySet
from django.http import Http404

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


# --- Staff side

def took_part(user, decision: Decision) -> bool:
    """Whether a person decided, approved or reviewed the decision (claimed its case, sent it back).

    The audit trail is the record of who touched the case, so it answers for claims and send-backs.
    """
    if user.pk in (decision.decided_by_id, decision.approved_by_id):
        return True
    return AuditEvent.objects.filter(
        Q(action=AuditAction.CASE_CLAIMED, target_type="cases.case", target_id=str(decision.case_id))
        | Q(action__in=[AuditAction.DECISION_SENT_BACK, AuditAction.DECISION_APPROVED],
            target_type="cases.decision", target_id=str(decision.pk)),
        actor_type="user", actor_id=str(user.pk),
    ).exists()


def appeals_queue() -> QuerySet[Appeal]:
    """Open appeals, the nearest deadline first (DSA: decided without undue delay)."""
    return (Appeal.objects.filter(state__in=Appeal.OPEN_STATES)
            .select_related("decision", "account", "reviewer").order_by("filed_at"))


def appeal_for_staff_or_404(pk: int) -> Appeal:
    appeal = (Appeal.objects.select_related("decision__case", "decision__statement", "decision__decided_by",
                                            "decision__approved_by", "account", "reviewer", "replacement")
              .prefetch_related("messages", "attachments", "decision__clauses").filter(pk=pk).first())
    if appeal is None:
        raise Http404("No such appeal.")
    return appeal


def overturn_rates(*, by: str) -> list[dict]:
    """Decided appeals and the share overturned or modified, grouped by clause, detector or reviewer.

    Rows: {"key", "decided", "overturned", "modified", "rate"} (rate = (overturned + modified) / decided).
    """
    groups = {
        "clause": "decision__clauses__ref",
        "detector": "decision__case__flags__detector__slug",
        "reviewer": "decision__decided_by__username",
    }
    if by not in groups:
        raise ValueError(f"overturn rates are grouped by one of {sorted(groups)}, not {by!r}")
    rows = (Appeal.objects.filter(state=Appeal.State.DECIDED).values(key=F(groups[by]))
            .annotate(decided=Count("pk", distinct=True),
                      overturned=Count("pk", filter=Q(outcome=Appeal.Outcome.OVERTURNED), distinct=True),
                      modified=Count("pk", filter=Q(outcome=Appeal.Outcome.MODIFIED), distinct=True))
            .order_by("key"))
    return [{**row, "rate": (row["overturned"] + row["modified"]) / row["decided"]} for row in rows if row["decided"]]
