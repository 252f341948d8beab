"""Reads of the audit trail: the chain check and the lists compliance officers page through."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from .chain import CANONICAL_TIMESTAMP_SQL, GENESIS_HASH, link_hash_matches
from .models import AuditEvent

_VERIFY_CHUNK = 5000


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    count: int
    head_seq: int
    head_hash: str
    broken_seq: int | None = None
    reason: str = ""
    # Committed events the sequencer has not reached yet (not part of the chain, not verified).
    unsequenced: int = 0


# The chain in order, one tuple a row, through a server-side cursor: memory stays flat however long the chain is,
# and no model instance or dict of Django's per row (at 1,000,000 events .values().iterator() cost more than the
# hashing). created_at comes twice: as the datetime link_hash takes, and as PostgreSQL writes it in the chain's
# canonical form (chain.CANONICAL_TIMESTAMP_SQL), which spares link_hash_matches a conversion per row.
_CHAIN = f"""
SELECT seq, created_at, {CANONICAL_TIMESTAMP_SQL.format(column="created_at")},
       actor_type, actor_id, actor_display, action, target_type, target_id, data::text, prev_hash, hash
FROM audit_auditevent WHERE seq IS NOT NULL ORDER BY seq
"""  # noqa: S608 (a constant of chain.py)


@contextmanager
def _links(chunk_size: int) -> Iterator[Iterator[tuple]]:
    with transaction.atomic(), connection.chunked_cursor() as cursor:
        cursor.cursor.itersize = chunk_size  # psycopg's own cursor under Django's wrapper
        cursor.execute(_CHAIN)
        yield iter(cursor)


def chain_verify(*, progress: Callable[[int], None] | None = None, chunk_size: int = _VERIFY_CHUNK) -> ChainReport:
    """Recompute every sequenced link. Stops at the first broken one and names it (DESIGN.md invariant 1).

    The chain is the events with a ``seq``: 1, 2, 3 … without a gap. Events still waiting for the
    sequencer are no part of it yet; the report counts them (``unsequenced``), and
    ``unsequenced_events`` tells whether any has waited too long. Each link's hash is checked with
    ``chain.link_hash_matches`` (the same answer as ``link_hash``).
    """
    expected_seq, prev_hash, count = 1, GENESIS_HASH, 0
    loads = json.loads
    with _links(chunk_size) as links:
        for (seq, created_at, created_text, actor_type, actor_id, actor_display, action, target_type, target_id,
             data, stored_prev, stored_hash) in links:
            if seq != expected_seq:
                return ChainReport(False, count, expected_seq - 1, prev_hash, expected_seq,
                                   f"event {expected_seq} is missing (next stored event is {seq})",
                                   _unsequenced_count())
            if stored_prev != prev_hash:
                return ChainReport(False, count, seq - 1, prev_hash, seq,
                                   f"event {seq} does not point at the hash of event {seq - 1}",
                                   _unsequenced_count())
            fields = {"seq": seq, "created_at": created_at, "actor_type": actor_type, "actor_id": actor_id,
                      "actor_display": actor_display, "action": action, "target_type": target_type,
                      "target_id": target_id, "data": loads(data)}
            if not link_hash_matches(prev_hash=prev_hash, fields=fields, stored=stored_hash,
                                     canonical_created_at=created_text):
                return ChainReport(False, count, seq - 1, prev_hash, seq,
                                   f"event {seq} was changed after it was written (its hash does not match)",
                                   _unsequenced_count())
            prev_hash, expected_seq, count = stored_hash, seq + 1, count + 1
            if progress and count % _VERIFY_CHUNK == 0:
                progress(count)
    return ChainReport(True, count, expected_seq - 1, prev_hash, unsequenced=_unsequenced_count())


def _unsequenced_count() -> int:
    return AuditEvent.objects.filter(seq__isnull=True).count()  # the partial index: as cheap as the tail is short


@dataclass(frozen=True)
class UnsequencedEvents:
    count: int  # committed events waiting for the sequencer longer than asked
    oldest_at: datetime | None  # created_at of the oldest of them


def oldest_unsequenced_at():
    """When the oldest committed event still waiting for the sequencer was written; None when none waits
    (one indexed read: the partial index on events without a ``seq``)."""
    return (AuditEvent.objects.filter(seq__isnull=True).order_by("created_at")
            .values_list("created_at", flat=True).first())


def unsequenced_events(*, older_than: timedelta = timedelta(seconds=60)) -> UnsequencedEvents:
    """Events committed but still not sequenced after ``older_than``: a fault to report.

    The sequencer runs right after every commit and every second from beat, so an event normally
    waits milliseconds. One that waits a minute means no sequencer is running (beat or worker down)
    or sequencing fails; until it is sequenced it is not covered by the chain or its checkpoints.
    """
    stale = AuditEvent.objects.filter(seq__isnull=True, created_at__lt=timezone.now() - older_than)
    oldest = stale.order_by("created_at").values_list("created_at", flat=True).first()
    return UnsequencedEvents(count=stale.count() if oldest else 0, oldest_at=oldest)


def events_for_listing(*, action: str = "", actor: str = "", target_type: str = "",
                       target_id: str = "") -> QuerySet[AuditEvent]:
    # Newest first: events still waiting for the sequencer (no seq yet) on top, then the chain.
    events = AuditEvent.objects.order_by(F("seq").desc(nulls_first=True), "-id")
    if action:
        events = events.filter(action=action)
    if actor:
        events = events.filter(actor_display__icontains=actor)
    if target_type:
        events = events.filter(target_type=target_type)
    if target_id:
        events = events.filter(target_id=target_id)
    return events


def latest_checkpoint() -> AuditEvent | None:
    from .actions import AuditAction

    return (
        AuditEvent.objects.filter(action__in=[AuditAction.AUDIT_CHECKPOINT, AuditAction.AUDIT_CHAIN_BROKEN])
        .order_by("-seq")
        .first()
    )
