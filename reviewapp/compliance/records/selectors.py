"""Reads of the decision register and of one decision's record.

The register pages by decision id, newest first (``WHERE id < <last shown> ORDER BY id DESC LIMIT 51``), like
the audit explorer: no count of every match, and page 10,000 costs what page 1 does. A page is a fixed number
of queries whatever its length (the decisions with their people and account, their clauses, their appeals).

The record of a decision tells its case's story, because a decision's meaning lies in it: the flags and
detector versions behind the case, who claimed it and opened its evidence, every decision of the case (an
earlier one sent back, this one, a replacement on appeal), each decision's clauses as they were worded in the
policy version it was taken under (clauses are immutable rows of their version), rationale and facts for the
holder, approval or send-back, the statement of reasons as issued, enforcement and its delivery, the appeals
with their messages, outcome and reversal, what was shared with the Forum about the account and withdrawn —
and, under it all, every event of the case's history in the audit trail in order (records.history), each
linked to its event. The sections link the events they come from (``Record.event_for``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, F, Max, Min, Prefetch, QuerySet, Sum

from appeals.models import Appeal, AppealMessage
from flags.models import Flag
from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.cases.models import Decision
from reviewapp.forum.models import ShareAccount, ShareProposal, ShareWithdrawal
from reviewapp.outbox.models import OutboxMessage
from reviewapp.policy.models import Clause

from .history import CASE, Subject, history_of

PAGE_SIZE = 50
HANDLING = frozenset({AuditAction.CASE_CLAIMED, AuditAction.CASE_RELEASED, AuditAction.CASE_CLAIM_LAPSED,
                      AuditAction.EVIDENCE_OPENED})
TIMELINE_LIMIT = 1000  # events shown in a record's timeline; the rest are a click away in the explorer


@dataclass
class DecisionPage:
    decisions: list[Decision]
    before: int | None
    next_before: int | None
    newer: bool


def register_page(decisions: QuerySet[Decision], *, before: int | None = None,
                  page_size: int | None = None) -> DecisionPage:
    """One page of the (filtered) register below decision id ``before``, newest first."""
    page_size = page_size or PAGE_SIZE
    if before is not None:
        decisions = decisions.filter(pk__lt=before)
    rows = list(decisions.select_related("account", "decided_by", "approved_by")
                .prefetch_related(Prefetch("clauses", queryset=Clause.objects.only("pk", "ref")),
                                  Prefetch("appeals", queryset=Appeal.objects.only("pk", "decision_id", "state",
                                                                                   "outcome", "filed_at")))
                .order_by("-pk")[: page_size + 1])
    more = len(rows) > page_size
    rows = rows[:page_size]
    return DecisionPage(rows, before, rows[-1].pk if more else None, before is not None)


@dataclass(frozen=True)
class FlagSummary:
    detector_slug: str
    detector_version: str
    signal: str
    flags: int
    requests: int | None
    first_observed: object
    last_observed: object


@dataclass
class Record:
    decision: Decision
    decisions: list[Decision]  # every decision of the case, oldest first (this one among them)
    flags: list[FlagSummary]
    appeals: list[Appeal]  # of every decision of the case, with their messages
    deliveries: list[OutboxMessage]  # everything sent for the case: webhooks, emails, Forum posts
    shares: list[ShareProposal]  # made from the case or naming its account
    withdrawals: list[ShareWithdrawal]
    timeline: list[AuditEvent]  # the case's history, oldest first, at most TIMELINE_LIMIT
    timeline_more: bool
    subject: Subject
    _events: dict[tuple[str, str, str], AuditEvent] = field(default_factory=dict)

    @property
    def handling(self) -> list[AuditEvent]:
        """Who held the case and who opened its evidence, and when (claims, releases, lapses, openings)."""
        return [event for event in self.timeline if event.action in HANDLING]

    def event_for(self, action: str, target_type: str, target_id) -> AuditEvent | None:
        """The first event of the timeline with this action and target (None when the timeline has none)."""
        return self._events.get((action, target_type, str(target_id)))


def decision_record(decision: Decision) -> Record:
    """The record of ``decision`` (module docstring): a fixed number of queries whatever the case's size."""
    case_id = decision.case_id
    decisions = list(Decision.objects.filter(case_id=case_id)
                     .select_related("decided_by", "approved_by", "policy_version__policy", "statement", "account")
                     .prefetch_related(Prefetch("clauses", queryset=Clause.objects.order_by("position")))
                     .order_by("decided_at", "pk"))
    this = next(item for item in decisions if item.pk == decision.pk)
    flags = [FlagSummary(**row) for row in (
        Flag.objects.filter(case_id=case_id)
        .values("detector_version", "signal", detector_slug=F("detector__slug"))
        .annotate(flags=Count("pk"), requests=Sum("request_count"), first_observed=Min("observed_from"),
                  last_observed=Max("observed_to"))
        .order_by("detector_slug", "detector_version", "signal"))]
    decision_ids = [item.pk for item in decisions]
    appeals = list(Appeal.objects.filter(decision_id__in=decision_ids)
                   .select_related("reviewer", "replacement")
                   .prefetch_related(Prefetch("messages", queryset=AppealMessage.objects.select_related("author")),
                                     "attachments")
                   .order_by("filed_at", "pk"))
    subject = Subject(CASE, case_id)
    history = history_of(subject)
    deliveries = list(history.messages.only(
        "pk", "kind", "state", "attempts", "target_type", "target_id", "created_at", "delivered_at")
        .order_by("created_at", "pk"))
    account_id = this.account_id
    shares = list(ShareProposal.objects.filter(
        pk__in=ShareAccount.objects.filter(account_id=account_id).values("version__proposal_id"))
        .union(ShareProposal.objects.filter(case_id=case_id)).order_by("proposed_at", "pk"))
    withdrawals = list(ShareWithdrawal.objects.filter(proposal__in=[s.pk for s in shares])
                       .select_related("withdrawn_by").order_by("withdrawn_at", "pk"))
    timeline = list(history.events.order_by("created_at", "pk")[: TIMELINE_LIMIT + 1])
    more = len(timeline) > TIMELINE_LIMIT
    timeline = timeline[:TIMELINE_LIMIT]
    events: dict[tuple[str, str, str], AuditEvent] = {}
    for event in timeline:
        events.setdefault((event.action, event.target_type, event.target_id), event)
    return Record(this, decisions, flags, appeals, deliveries, shares, withdrawals, timeline, more, subject, events)
