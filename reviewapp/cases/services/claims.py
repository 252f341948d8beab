"""Claiming cases from queues, releasing them, and opening their raw evidence.

A claim is a short transaction that sets the assignee and a lease (never a row lock held while a person
reviews). Claim-next takes the best unclaimed case with ``FOR NO KEY UPDATE SKIP LOCKED``, so any number
of reviewers claiming at once never get the same case. The assignee holds the django-guardian object
permission ``view_case_evidence`` on that case while the claim lasts.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.models import F, Func, IntegerField, TextField
from django.db.models.functions import Cast
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.services import SYSTEM, Entry, Target, record, record_many

from ..evidence import evidence_load
from ..models import Case
from ..selectors import can_open_evidence
from ..workflow import case_move_check
from . import case_transition

EVIDENCE_PERMISSION = "cases.view_case_evidence"

# The raw UPDATE keeps claim-next one round trip on the claimable index; the moves it makes (new → in_review,
# or a lapsed in_review taken over) are checked against workflow.TRANSITIONS and audited after it returns.
_CLAIM_NEXT = """
WITH next AS (
    SELECT id, assignee_id AS previous, state AS previous_state FROM cases_case
    WHERE queue = %(queue)s
      AND (state = 'new' OR (state = 'in_review' AND lease_expires_at < %(now)s))
    ORDER BY priority DESC, opened_at, id
    LIMIT 1
    FOR NO KEY UPDATE SKIP LOCKED
)
UPDATE cases_case c
SET assignee_id = %(user)s, claimed_at = %(now)s, lease_expires_at = %(lease)s, state = 'in_review',
    updated_at = %(now)s
FROM next WHERE c.id = next.id
RETURNING c.id, next.previous, next.previous_state
"""


class ClaimError(Exception):
    """A claim that cannot be made; the message says why."""


def lease_until(now: datetime) -> datetime:
    return now + timedelta(minutes=settings.CASE_CLAIM_LEASE_MINUTES)


def _require_claimer(user) -> None:
    if not user.has_perm("cases.claim_case"):
        raise PermissionDenied("Your role does not claim cases.")


def _hand_over(case_id: int, *, to, previous_id: int | None) -> None:
    if previous_id and previous_id != getattr(to, "pk", None):
        from django.contrib.auth import get_user_model

        remove_perm(EVIDENCE_PERMISSION, get_user_model().objects.get(pk=previous_id), Case(pk=case_id))
    if to is not None:
        assign_perm(EVIDENCE_PERMISSION, to, Case(pk=case_id))


@transaction.atomic
def case_claim_next(*, reviewer, queue: str) -> Case | None:
    """Claim the highest-priority, oldest unclaimed case of a queue (or one whose claim lapsed)."""
    _require_claimer(reviewer)
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_NEXT, {"queue": queue, "now": now, "lease": lease_until(now), "user": reviewer.pk})
        row = cursor.fetchone()
    if row is None:
        return None
    case_id, previous, previous_state = row
    entries = []
    if previous_state != Case.State.IN_REVIEW:  # a lapsed claim taken over stays in review: no move
        case_move_check(Case(pk=case_id, state=previous_state), Case.State.IN_REVIEW)  # raises: all rolled back
        entries.append(Entry(actor=reviewer, action=AuditAction.CASE_TRANSITIONED,
                             target=Target("cases.case", str(case_id)),
                             data={"from": previous_state, "to": Case.State.IN_REVIEW.value, "reason": "claimed"}))
    _hand_over(case_id, to=reviewer, previous_id=previous)
    entries.append(Entry(actor=reviewer, action=AuditAction.CASE_CLAIMED, target=Target("cases.case", str(case_id)),
                         data={"queue": queue, "lease_expires_at": lease_until(now), "taken_over_from": previous,
                               "next": True}))
    record_many(entries)
    return Case.objects.select_related("account", "campaign").get(pk=case_id)


@transaction.atomic
def case_claim(*, reviewer, case: Case) -> Case:
    """Claim one case (or renew one's own claim). Refused while someone else's claim is live."""
    _require_claimer(reviewer)
    case = Case.objects.select_for_update(no_key=True).get(pk=case.pk)
    now = timezone.now()
    if case.state not in (Case.State.NEW, Case.State.IN_REVIEW):
        raise ClaimError(f"case {case.pk} is {case.get_state_display().lower()}; only open cases can be claimed")
    live = case.lease_expires_at is not None and case.lease_expires_at > now
    held_by_other = case.assignee_id not in (None, reviewer.pk) and live
    if held_by_other and case.state == Case.State.IN_REVIEW:
        raise ClaimError(f"case {case.pk} is claimed by {case.assignee} until {case.lease_expires_at:%H:%M} UTC")
    previous, renewing = case.assignee_id, case.assignee_id == reviewer.pk and case.state == Case.State.IN_REVIEW
    case.assignee, case.claimed_at, case.lease_expires_at = reviewer, now, lease_until(now)
    if case.state == Case.State.IN_REVIEW:  # renewed, or a lapsed claim taken over: no move
        case.save(update_fields=["assignee", "claimed_at", "lease_expires_at", "updated_at"])
    else:
        case_transition(case=case, to=Case.State.IN_REVIEW, actor=reviewer, reason="claimed", locked=True,
                        fields=_CLAIM_FIELDS)
    _hand_over(case.pk, to=reviewer, previous_id=previous)
    record(actor=reviewer, action=AuditAction.CASE_CLAIMED, target=case,
           data={"queue": case.queue, "lease_expires_at": case.lease_expires_at, "renewed": renewing,
                 "taken_over_from": previous if previous != reviewer.pk else None})
    return case


@transaction.atomic
def case_release(*, reviewer, case: Case, reason: str = "") -> Case:
    """Give a claimed case back to its queue; the evidence permission goes with it."""
    _require_claimer(reviewer)
    case = Case.objects.select_for_update(no_key=True).get(pk=case.pk)
    if case.assignee_id != reviewer.pk or case.state != Case.State.IN_REVIEW:
        raise ClaimError(f"case {case.pk} is not claimed by you")
    events = [Entry(actor=reviewer, action=AuditAction.CASE_RELEASED, target=case, data={"reason": reason})]
    _release(case, actor=reviewer, reason="released", events=events)
    record_many(events)
    return case


_CLAIM_FIELDS = ("assignee", "claimed_at", "lease_expires_at")


def _release(case: Case, *, actor, reason: str, events: list[Entry]) -> None:
    """Back to the queue (in_review → new, through the table), the claim and its evidence permission gone."""
    previous = case.assignee_id
    case.assignee, case.claimed_at, case.lease_expires_at = None, None, None
    case_transition(case=case, to=Case.State.NEW, actor=actor, reason=reason, locked=True, fields=_CLAIM_FIELDS,
                    events=events)
    _hand_over(case.pk, to=None, previous_id=previous)


@transaction.atomic
def case_claims_lapse(*, now: datetime | None = None) -> int:
    """Periodic: return cases whose claim lapsed to their queue (evidence permission removed)."""
    now = now or timezone.now()
    lapsed = list(Case.objects.select_for_update(no_key=True, skip_locked=True)
                  .filter(state=Case.State.IN_REVIEW, lease_expires_at__lt=now))
    entries = []
    for case in lapsed:
        entries.append(Entry(actor=SYSTEM, action=AuditAction.CASE_CLAIM_LAPSED, target=case,
                             data={"assignee": case.assignee_id, "lease_expired_at": case.lease_expires_at}))
        _release(case, actor=SYSTEM, reason="claim lapsed", events=entries)
    record_many(entries)
    return len(lapsed)


def evidence_open(*, user, case: Case, context: str) -> list[dict]:
    """The raw evidence (prompt excerpts) of a case's flags, for someone allowed to see it.

    Refused (404 upstream) for anyone ``can_open_evidence`` does not admit; the opening itself is
    ``evidence_read_audited``.
    """
    case = Case.objects.get(pk=case.pk)  # the claim as it is now, not as the caller last saw it
    if not can_open_evidence(user, case):
        raise PermissionDenied("You may not open this case's evidence.")
    return evidence_read_audited(user=user, case=case, context=context)


def evidence_read_audited(*, user, case: Case, context: str) -> list[dict]:
    """Read a case's raw evidence and write the ``evidence.opened`` audit event: who, which case and
    flags, and in what context (DESIGN.md invariant 2). Callers check who may read it first: here for
    reviewers, approvers and compliance; the appeals app for an appeal's reviewer."""
    # The evidence travels as JSON text and is decoded only within the depth bound (cases.evidence): a
    # row stored deeper than that must not make the page or its audit event fail.
    flags = list(case.flags.filter(evidence__isnull=False).select_related("detector")
                 .order_by("-observed_to", "-id")
                 .annotate(evidence_text=Cast("evidence", TextField()), excerpt_count=_EXCERPT_COUNT)
                 .values("id", "external_id", "detector__slug", "signal", "evidence_text", "excerpt_count"))
    for flag in flags:
        flag["evidence"] = evidence_load(flag["evidence_text"])
    with transaction.atomic():
        record(actor=user, action=AuditAction.EVIDENCE_OPENED, target=case,
               data={"flags": [f["id"] for f in flags], "context": context,
                     "excerpts": sum(f.pop("excerpt_count") for f in flags)})
    return flags


class _ExcerptCount(Func):
    """How many excerpts a flag's evidence lists, counted by the database (no decoding in Python)."""

    template = ("CASE WHEN jsonb_typeof(%(expressions)s -> 'excerpts') = 'array' "
                "THEN jsonb_array_length(%(expressions)s -> 'excerpts') ELSE 0 END")
    output_field = IntegerField()


_EXCERPT_COUNT = _ExcerptCount(F("evidence"))
