"""Writes to the audit trail. ``record`` is the only function that creates an ``AuditEvent``.

Called by other apps' services inside their own ``transaction.atomic`` block, so the event commits
or rolls back with the change it describes (DESIGN.md invariant 1). ``record`` takes no lock: the
event is inserted without its place in the chain, and the sequencer (``sequencer.py``, which explains
the design) gives it ``seq``, ``prev_hash`` and ``hash`` right after the commit, in its own short
transaction. Until then the event exists, with its content, and ``event.seq`` is None.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.utils import timezone

from . import sqlarray
from .actions import AuditAction
from .chain import hashable_data_check
from .models import AuditEvent
from .sequencer import sequence_on_commit


@dataclass(frozen=True)
class Actor:
    """Who did it, for actors that are not a user row (detectors, the system, holders, anonymous)."""

    type: str
    id: str = ""
    display: str = ""


@dataclass(frozen=True)
class Target:
    """What it was done to, when that is not (or no longer) a model instance."""

    type: str
    id: str


SYSTEM = Actor(type=AuditEvent.ActorType.SYSTEM, id="reviewapp", display="reviewapp")


def actor_for_user(user) -> Actor:
    if user is None or not getattr(user, "is_authenticated", False):
        return Actor(type=AuditEvent.ActorType.ANONYMOUS)
    full_name = user.get_full_name() if hasattr(user, "get_full_name") else ""
    display = f"{user.get_username()} ({full_name})" if full_name else user.get_username()
    return Actor(type=AuditEvent.ActorType.USER, id=str(user.pk), display=display)


def _as_actor(actor: Actor | models.Model | None) -> Actor:
    if isinstance(actor, Actor):
        return actor
    return actor_for_user(actor)


def _as_target(target: Target | models.Model | None) -> tuple[str, str]:
    if target is None:
        return "", ""
    if isinstance(target, Target):
        return target.type, target.id
    return target._meta.label_lower, str(target.pk)


@dataclass(frozen=True)
class Entry:
    """One event for ``record_many``: the same arguments ``record`` takes."""

    actor: Actor | models.Model | None
    action: AuditAction
    target: Target | models.Model | None = None
    data: dict[str, Any] | None = None


_COLUMNS = ("actor_type", "actor_id", "actor_display", "action", "target_type", "target_id", "data")


def _row(entry: Entry) -> tuple[str, ...]:
    """The event's columns as ``_COLUMNS`` lists them, its data as the JSON text jsonb will store."""
    who = _as_actor(entry.actor)
    target_type, target_id = _as_target(entry.target)
    return (who.type, who.id, who.display[:255],
            AuditAction(entry.action).value,  # refuses codes that are not in the one list
            target_type, target_id,
            # Dates, UUIDs and Decimals become strings, tuples lists: what the sequencer will read back and hash.
            _hashable(json.dumps(entry.data or {}, cls=DjangoJSONEncoder)))


def _hashable(text: str) -> str:
    hashable_data_check(text)
    return text


# One statement for any number of events: each column as one array parameter (sqlarray: built by one join,
# parsed by PostgreSQL), not a placeholder per value. RETURNING gives the ids in the order given.
_APPEND = """
INSERT INTO audit_auditevent (created_at, actor_type, actor_id, actor_display, action, target_type, target_id, data)
SELECT %s, * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::jsonb[])
RETURNING id
"""


def _append(entries: list[Entry], *, sequence_after_commit: bool) -> tuple[datetime, list[tuple], list[int]]:
    now = timezone.now()
    rows = [_row(entry) for entry in entries]
    with connection.cursor() as cursor:
        cursor.execute(_APPEND, [now, *(sqlarray.texts(column) for column in zip(*rows, strict=True))])
        ids = [pk for (pk,) in cursor.fetchall()]
    if sequence_after_commit:
        sequence_on_commit()
    return now, rows, ids


@transaction.atomic
def record_many(entries: list[Entry], *, sequence_after_commit: bool = True) -> int:
    """Write several events at once (one INSERT), in the caller's transaction; return how many.

    For services that change many rows in one step (grouping thousands of flags into cases): each
    change still gets its own event, at the cost of one statement instead of thousands (and no model
    instance per event). The events share one ``created_at`` and are sequenced in the order given.

    ``sequence_after_commit=False`` leaves the sequencing to the next sequencer run (beat, every second,
    or the caller's own ``sequencer.sequence_pending`` after a series of transactions): for a bulk writer
    that commits often (grouping), so that its thread goes on with its next batch instead of sequencing
    the last one's events, and the sequencer takes many batches' events in one transaction.
    """
    if not entries:
        return 0
    return len(_append(entries, sequence_after_commit=sequence_after_commit)[2])


def record(
    *,
    actor: Actor | models.Model | None,
    action: AuditAction,
    target: Target | models.Model | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Write one event in the caller's transaction; it joins the chain right after the commit.

    No lock is taken here, so concurrent writers never wait for each other; the sequencer serialises
    only the append itself (``sequencer.sequence_pending``), and concurrent writers in any number of
    processes still produce one gapless chain. The returned event has ``seq`` None until sequenced.
    """
    with transaction.atomic():
        now, (row,), (pk,) = _append([Entry(actor=actor, action=action, target=target, data=data)],
                                     sequence_after_commit=True)
    event = AuditEvent(pk=pk, created_at=now, **dict(zip(_COLUMNS, row, strict=True)))
    event.data = json.loads(row[-1])  # exactly what jsonb gives back, as the sequencer will hash it
    event._state.adding, event._state.db = False, connection.alias
    return event
