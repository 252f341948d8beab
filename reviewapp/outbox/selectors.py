"""Reads of the outbox: the staff listing and what the reconciler picks up."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, QuerySet
from django.utils import timezone

from .models import OutboxMessage


def messages_for_listing(*, state: str = "", kind: str = "") -> QuerySet[OutboxMessage]:
    messages = OutboxMessage.objects.order_by("-id")
    if state:
        messages = messages.filter(state=state)
    if kind:
        messages = messages.filter(kind=kind)
    return messages.defer("payload")


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


def oldest_due_since(*, now: datetime | None = None) -> datetime | None:
    """When the longest-waiting pending message fell due (None when none is due).

    Measured against the due time, not creation: a message in back-off after a failed try is waiting on
    purpose, and only a due one that nobody tries means delivery stopped. Served by the partial index.
    """
    now = now or timezone.now()
    return (
        OutboxMessage.objects.filter(state=OutboxMessage.State.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
