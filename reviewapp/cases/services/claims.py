"""Claiming cases from queues and releasing them (opening a case's raw evidence is flags.evidence: it reads flags).

A claim is a short transaction that sets the assignee and a lease (never a row lock held while a person
reviews). Claim-next takes the best unclaimed case with ``FOR NO KEY UPDATE SKIP LOCKED``, so any number
of reviewers claiming at once never get the same case. The assignee holds the django-guardian object
permission ``view_case_evidence`` on that case while the claim lasts.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.services import SYSTEM, Entry, Target, record, record_many
from reviewapp.limits import ensure_length

from ..models import Case, claim_lapsed, claimable
from ..predicates import q_sql, sql_param
from ..workflow import case_move_check
from . import case_transition

EVIDENCE_PERMISSION = "cases.view_case_evidence"
RELEASE_REASON_MAX_CHARS = 2_000  # README "Limits on what people type"

# The raw UPDATE keeps claim-next one round trip on the claimable index; the moves it makes (new → in_review,
# or a lapsed in_review taken over) are checked against workflow.TRANSITIONS and audited after it returns.
# What it may take is models.claimable, read as SQL (built on first use: it needs the database connection).
_CLAIM_NEXT = """
WITH next AS (
    SELECT id, assignee_id AS previous, state AS previous_state FROM cases_case
    WHERE queue = %(queue)s AND {claimable}
    ORDER BY priority DESC, opened_at, id
    LIMIT 1
    FOR NO KEY UPDATE SKIP LOCKED
)
UPDATE cases_case c
SET assignee_id = %(user)s, claimed_at = %(now)s, lease_expires_at = %(lease)s, state = %(to)s,
    updated_at = %(now)s
FROM next WHERE c.id = next.id
RETURNING c.id, next.previous, next.previous_state
"""


@functools.cache
def _claim_next_sql() -> str:
    return _CLAIM_NEXT.format(claimable=q_sql(claimable(sql_param("now")), Case))


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
        cursor.execute(_claim_next_sql(), {"queue": queue, "now": now, "lease": lease_until(now), "user": reviewer.pk,
                                           "to": Case.State.IN_REVIEW.value})
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
    if case.assignee_id not in (None, reviewer.pk) and case.claim_live_at(now):
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
    # Kept only in the audit trail, which keeps everything for ever: bounded like the texts models hold.
    ensure_length(reason, label="The reason for releasing", limit=RELEASE_REASON_MAX_CHARS, error=ClaimError)
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
                  .filter(claim_lapsed(now)))
    entries = []
    for case in lapsed:
        entries.append(Entry(actor=SYSTEM, action=AuditAction.CASE_CLAIM_LAPSED, target=case,
                             data={"assignee": case.assignee_id, "lease_expired_at": case.lease_expires_at}))
        _release(case, actor=SYSTEM, reason="claim lapsed", events=entries)
    record_many(entries)
    return len(lapsed)
