"""The sequencer: gives committed audit events their place in the hash chain, in order, after commit.

Why a sequencer (issue 8, section 2; DESIGN.md invariant 1). A hash chain has one serialisation point,
its head: link n+1 needs the hash of link n. If writers appended to the chain themselves, each would
hold the chain head from its first event until its transaction commits, and a slow transaction (a
grouping batch) would hold up every claim, decision and ingestion in the system. Certificate
Transparency logs and Trillian split the append in two, and so do we:

1. **Write** (``services.record``, in the writer's own transaction, no global lock): the event is
   inserted with its content and ``created_at``; ``seq``, ``prev_hash`` and ``hash`` stay empty. The
   event commits or rolls back with the change it describes, so there is still no change without its
   event and no event without its change. A rolled-back writer leaves nothing, hence no gap.
2. **Sequence** (``sequence_pending``, here, in its own short transaction): under a transaction-scoped
   advisory lock on the chain head, read the head, take committed events that have no ``seq`` yet in
   ``(created_at, id)`` order, give each the next ``seq``, its ``prev_hash`` and
   ``hash = sha256(prev_hash ‖ RFC 8785 JSON of {seq, content})`` (``chain.link_hash``), commit. The
   lock is held for a few milliseconds per batch of up to ``batch_size`` events, never for a writer's
   transaction.

It runs (a) in the writing process right after each commit that recorded events
(``transaction.on_commit``), with a *try*-lock, so writers never wait for each other: if another
sequencer holds the lock, that one takes our events (after releasing the lock it looks again and goes
on while events wait; see ``sequence_pending`` for why that misses none); and (b) from Celery beat
every second (``tasks.sequence_audit_events``), the backstop for a process that died between its
commit and its sequencing, a sequencing run that failed, or one that stopped at its time budget. A bulk
writer that commits many transactions in a row (the grouping task) opts out of (a)
(``record_many(…, sequence_after_commit=False)``) and calls ``sequence_pending`` once after its series:
one sequencing transaction for many batches' events, and its thread never stops between batches.

Why the chain lives on the event row rather than in a separate link table: every reader (the audit
pages, checkpoints, tests, other apps) keeps reading ``seq``/``prev_hash``/``hash`` where they always
were, and a partial index on the rows whose ``seq`` is empty makes finding the pending events cost
only as much as there are pending events (a separate link table would need a third, deletable queue
table for that, as Trillian's ``Unsequenced``). The price is one narrowly allowed UPDATE: the append-only
trigger (``models._APPEND_ONLY``) accepts exactly the step that fills ``seq``, ``prev_hash`` and
``hash`` from empty on a row whose other columns stay as written; every other UPDATE, every DELETE
and TRUNCATE are refused as before. In production the application role needs UPDATE only on those
three columns (``GRANT UPDATE (seq, prev_hash, hash)``), and nothing a writer can do with it escapes
``verify_audit``: a row sequenced out of turn is a gap or a bad hash.

Readers: the chain is the events with a ``seq``, 1…head without gaps; the head is the row with the
largest ``seq`` (``chain_head``). Events not yet sequenced are shown as "pending sequencing" and
counted by ``selectors.chain_verify``; one pending for long is a fault (``selectors.unsequenced_events``).
"""

from __future__ import annotations

import json
import time

from django.db import connection, transaction

from . import sqlarray
from .chain import CANONICAL_TIMESTAMP_SQL, GENESIS_HASH, HASHED_FIELDS, link_hash
from .models import AuditEvent

# Any constant works; it only has to be the same in every process ("auditchn" as a bigint).
_CHAIN_LOCK_KEY = int.from_bytes(b"auditchn", "big")
_CONTENT_FIELDS = tuple(name for name in HASHED_FIELDS if name != "seq")
BATCH_SIZE = 1000
AFTER_COMMIT_BUDGET_SECONDS = 0.5


def chain_head() -> tuple[int, str]:
    """``(seq, hash)`` of the last sequenced event, or ``(0, GENESIS_HASH)`` for an empty chain."""
    head = AuditEvent.objects.filter(seq__isnull=False).order_by("-seq").values("seq", "hash").first()
    return (head["seq"], head["hash"]) if head else (0, GENESIS_HASH)


def _lock_chain_head(*, wait: bool) -> bool:
    with connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_xact_lock(%s::bigint)", [_CHAIN_LOCK_KEY])
            return True
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s::bigint)", [_CHAIN_LOCK_KEY])
        return cursor.fetchone()[0]


def _links(pending: list[dict], *, head_seq: int, head_hash: str) -> list[tuple[int, int, str, str]]:
    """``(event id, seq, prev_hash, hash)`` for each pending event, continuing the chain from its head."""
    links, seq, prev_hash = [], head_seq, head_hash
    for event in pending:
        seq += 1
        digest = link_hash(prev_hash=prev_hash, fields={**event, "seq": seq}, canonical_created_at=event["created_at"])
        links.append((event["id"], seq, prev_hash, digest))
        prev_hash = digest
    return links


# The waiting events, oldest first, through the partial index of unsequenced rows; created_at as the text that is
# hashed (chain.CANONICAL_TIMESTAMP_SQL), which spares a datetime parse and a conversion per event.
_PENDING = f"""
SELECT id, {CANONICAL_TIMESTAMP_SQL.format(column="created_at")}, actor_type, actor_id, actor_display, action,
       target_type, target_id, data
FROM audit_auditevent WHERE seq IS NULL ORDER BY created_at, id LIMIT %s
"""  # noqa: S608 (a constant of chain.py)
_PENDING_COLUMNS = ("id", *_CONTENT_FIELDS)  # the order _PENDING lists them in (created_at: its canonical text)
# One UPDATE for the whole batch, its values as four array parameters (sqlarray), not four per event.
_LINK = """
UPDATE audit_auditevent AS event SET seq = link.seq, prev_hash = link.prev_hash, hash = link.hash
FROM unnest(%(ids)s::bigint[], %(seqs)s::bigint[], %(prev)s::text[], %(hashes)s::text[])
    AS link (id, seq, prev_hash, hash)
WHERE event.id = ANY(%(ids)s::bigint[]) AND event.id = link.id AND event.seq IS NULL
"""


def _pending(batch_size: int) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(_PENDING, [batch_size])
        rows = cursor.fetchall()
    pending = []
    for row in rows:
        event = dict(zip(_PENDING_COLUMNS, row, strict=True))
        if isinstance(event["data"], str):  # Django's connection hands jsonb over as text
            event["data"] = json.loads(event["data"])
        pending.append(event)
    return pending


def _sequence_one_batch(*, batch_size: int, wait: bool) -> int | None:
    """One short transaction: sequence up to ``batch_size`` events. None if another sequencer is busy."""
    with transaction.atomic():
        if not _lock_chain_head(wait=wait):
            return None
        pending = _pending(batch_size)
        seq, prev_hash = chain_head() if pending else (0, GENESIS_HASH)
        links = _links(pending, head_seq=seq, head_hash=prev_hash)
        if links:
            with connection.cursor() as cursor:
                cursor.execute(_LINK, {"ids": sqlarray.ints(link[0] for link in links),
                                       "seqs": sqlarray.ints(link[1] for link in links),
                                       "prev": sqlarray.texts(link[2] for link in links),
                                       "hashes": sqlarray.texts(link[3] for link in links)})
                if cursor.rowcount != len(links):  # cannot happen while every sequencer takes the lock
                    raise RuntimeError(f"sequenced {cursor.rowcount} of {len(links)} audit events")
        return len(links)


def sequence_pending(*, batch_size: int = BATCH_SIZE, wait: bool = False, budget_seconds: float | None = None) -> int:
    """Give every committed, not yet sequenced event its ``seq`` and hashes; return how many.

    One short transaction per batch. After each one, with the lock released, it looks again for waiting
    events and goes on while there are any. That closes the race with writers: a writer whose
    after-commit try-lock found the chain head busy had committed before it tried, so before the
    holder released the lock, so the holder's look after releasing it sees that writer's events.

    With ``wait=False`` (after a commit, and from beat) it returns at once when another sequencer holds
    the chain head: that one takes our events. ``wait=True`` waits for the lock (tests, checkpoints).
    ``budget_seconds`` bounds how long one caller keeps going under a steady stream of writes (a web
    request sequencing after its commit); what it leaves, the next writer or beat takes.

    Call it outside any transaction: inside one, the transaction-scoped lock would stay held (and
    writers' try-locks refused) until that transaction ends, after the last look.
    """
    deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
    total = 0
    while True:
        done = _sequence_one_batch(batch_size=batch_size, wait=wait)
        if done is None:
            return total
        total += done
        if deadline is not None and time.monotonic() > deadline:
            return total
        if done < batch_size and not AuditEvent.objects.filter(seq__isnull=True).exists():
            return total


def _sequence_after_commit() -> None:
    sequence_pending(budget_seconds=AFTER_COMMIT_BUDGET_SECONDS)


def sequence_on_commit() -> None:
    """Sequence this transaction's events right after it commits (once per transaction)."""
    if not connection.in_atomic_block:
        return
    # One callback per transaction is enough: it sequences everything pending, ours included.
    if any(callback is _sequence_after_commit for _, callback, _ in connection.run_on_commit):
        return
    transaction.on_commit(_sequence_after_commit, robust=True)
