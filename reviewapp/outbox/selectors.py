"""Reads of the outbox: the staff listing and what the reconciler picks up."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Max, Min, Q, QuerySet
from django.db.models.fields.json import KT
from django.utils import timezone

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent

from .models import OutboxMessage


def messages_for_listing(*, state: str = "", kind: str = "") -> QuerySet[OutboxMessage]:
    messages = OutboxMessage.objects.order_by("-id")
    if state:
        messages = messages.filter(state=state)
    if kind:
        messages = messages.filter(kind=kind)
    # The payload stays in the database; only the few keys the page's labels read come along.
    return messages.defer("payload").annotate(
        payload_event=KT("payload__event"), payload_decision=KT("payload__decision_id"),
        payload_account=KT("payload__account_id"), payload_action=KT("payload__action"),
        payload_subject=KT("payload__subject"), payload_seq=KT("payload__seq"))


@dataclass(frozen=True)
class Delivery:
    """What one outbox message does, in words a person reads, and what it is about (for links).

    ``about`` names the objects the message concerns: ("decision", id), ("case", id), ("appeal", id),
    ("statement", id), ("account", external id), ("checkpoint", seq); the page links those the reader may open.
    """

    text: str
    about: tuple[tuple[str, str], ...] = ()


# The actions' words as a person reads them (policy.enforcement.Action's values; outbox is below policy's users
# and keeps its own short list rather than reading a higher app's choices).
ACTION_WORDS = {"warn": "warning", "rate_limit": "rate limit", "suspend": "suspension", "terminate": "termination",
                "no_violation": "no action"}


def state_counts() -> dict[str, int]:
    counts = dict(OutboxMessage.objects.values_list("state").annotate(n=Count("id")).values_list("state", "n"))
    return {state: counts.get(state, 0) for state in OutboxMessage.State.values}


def due_message_ids(*, now: datetime | None = None, limit: int = 1000) -> list[int]:
    """Pending messages whose next try is due, oldest due first (served by the partial index)."""
    now = now or timezone.now()
    return list(
        OutboxMessage.objects.filter(state=OutboxMessage.State.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("id", flat=True)[:limit]
    )


@dataclass(frozen=True)
class Waiting:
    """What /healthz reads of the pending messages, in one query (served by the partial index)."""

    # When the longest-due message fell due. Measured against the due time, not creation: a message in back-off
    # after a failed try is waiting on purpose, and only a due one that nobody tries means delivery stopped.
    due_since: datetime | None
    failing_since: datetime | None  # when the oldest message that has failed at least once was queued
    most_attempts: int  # the most attempts any pending message has had


def pending_waiting(*, now: datetime | None = None) -> Waiting:
    """Back-off hides a peer that is down from ``due_since`` (a message between tries is not due);
    ``failing_since`` shows it: a message still failing long after it was queued."""
    now = now or timezone.now()
    found = OutboxMessage.objects.filter(state=OutboxMessage.State.PENDING).aggregate(
        due=Min("next_attempt_at", filter=Q(next_attempt_at__lte=now)),
        failing=Min("created_at", filter=Q(attempts__gte=1)), attempts=Max("attempts"))
    return Waiting(due_since=found["due"], failing_since=found["failing"], most_attempts=found["attempts"] or 0)


_ENFORCEMENT_VERBS = {"enforcement.apply": "Enforcement", "enforcement.lift": "Lifting (its time is up)",
                      "enforcement.reverse": "Reversal"}


def deliveries_described(messages: Iterable[OutboxMessage]) -> dict[int, Delivery]:
    """Each message of a page (from ``messages_for_listing``) by id, described by what it does: an enforcement
    from its reversal, a statement notice from an appeal email, a witness checkpoint.

    The payload says the event, the decision, the action and the account; the audit trail, below every app,
    says the rest: the case a decision belongs to, the appeal that reversed it or that a replacement decision
    came from. One query for the whole page, however many rows.
    """
    messages = list(messages)
    decision_ids = {m.payload_decision or m.target_id for m in messages
                    if m.kind == "enforcement" and (m.payload_decision or m.target_type == "cases.decision")}
    recorded, reversed_by = {}, {}
    if decision_ids:
        events = (AuditEvent.objects.filter(target_type="cases.decision", target_id__in=decision_ids,
                                            action__in=[AuditAction.DECISION_RECORDED, AuditAction.DECISION_REVERSED])
                  .values_list("action", "target_id", "data"))
        for action, decision_id, data in events:
            (recorded if action == AuditAction.DECISION_RECORDED else reversed_by)[decision_id] = data or {}
    return {message.pk: _describe(message, recorded, reversed_by) for message in messages}


def _describe(message: OutboxMessage, recorded: dict, reversed_by: dict) -> Delivery:
    target = (message.target_type, message.target_id)
    if message.kind == "enforcement":
        decision = message.payload_decision or (message.target_id if target[0] == "cases.decision" else "")
        verb = _ENFORCEMENT_VERBS.get(message.payload_event or "", "Enforcement message")
        about = [("decision", decision)] if decision else []
        case = recorded.get(decision, {}).get("case")
        if case:
            about.append(("case", str(case)))
        text = f"{verb} of decision {decision or '?'}"
        appeal = (reversed_by.get(decision, {}).get("appeal") if message.payload_event == "enforcement.reverse"
                  else recorded.get(decision, {}).get("appeal"))
        if appeal and message.payload_event == "enforcement.reverse":
            text += f" after appeal {appeal}"
        elif appeal:
            text += f" (replaces decision {recorded[decision].get('replaces')} after appeal {appeal})"
        if appeal:
            about.append(("appeal", str(appeal)))
        action = ACTION_WORDS.get(message.payload_action or "", message.payload_action or "")
        if action or message.payload_account:
            text += f": {action or 'action'} on account {message.payload_account or '?'}"
        return Delivery(text, tuple(about))
    if message.kind == "email":
        subject = f"“{message.payload_subject}”" if message.payload_subject else ""
        if target[0] == "cases.statementofreasons":
            return Delivery(f"Statement of reasons {target[1]} emailed to the holder {subject}".strip(),
                            (("statement", target[1]),))
        if target[0] == "appeals.appeal":
            return Delivery(f"Email about appeal {target[1]} {subject}".strip(), (("appeal", target[1]),))
        if target[0] == "cases.account":
            return Delivery(f"Email to the holder of an account {subject}".strip())
        return Delivery(f"Email {subject}".strip())
    if message.kind == "witness":
        seq = message.payload_seq or target[1]
        return Delivery(f"Witness checkpoint: the signed audit chain head through event {seq}",
                        (("checkpoint", str(seq)),))
    return Delivery(f"{message.kind} · {message.target_label}" if message.target_label else message.kind)
