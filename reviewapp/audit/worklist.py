"""Selectors for the compliance officer's home page: the chain's unwitnessed tail and the latest events."""

from __future__ import annotations

from django.db.models import Q

from .models import AuditEvent
from .selectors import events_for_listing


def events_after_checkpoint(checkpoint: AuditEvent | None) -> int:
    """Events not covered by the last signed checkpoint: after the head it signed, or not yet sequenced
    (one count). With no checkpoint yet, every event."""
    head = (checkpoint.data or {}).get("head_seq") if checkpoint is not None else None
    events = AuditEvent.objects.all()
    if head is not None:
        events = events.filter(Q(seq__gt=head) | Q(seq__isnull=True))
    return events.count()


def events_recent(limit: int = 10) -> list[AuditEvent]:
    """The newest events, as the audit trail lists them (one query)."""
    return list(events_for_listing()[:limit])
