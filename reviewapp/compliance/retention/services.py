"""The retention purge (DESIGN.md invariant 8; issue 11 "Retention"): evidence past its clauses' retention period,
delivered email bodies past RETENTION_EMAIL_BODY_DAYS; decisions, statements of reasons and the audit trail stay.

``retention_purge`` is what the daily beat task and ``manage.py purge_retention`` run. The rule of what is due is
``selectors`` (one place, shared with the dry run and the console page); the removal itself belongs to the layer
that owns each table (``flags.retention.flags_evidence_purge``, ``outbox.retention.outbox_email_bodies_purge``),
each batch in a transaction of its own of at most RETENTION_PURGE_BATCH_SIZE rows, which writes its own audit
events (``evidence.purged`` per case, ``outbox.bodies_purged`` per batch): no change without its event, and no
lock held longer than one batch. Rows another transaction holds are skipped (the next run takes them), so a run
never waits and a second run removes nothing twice: idempotent. Every run ends with one PurgeRun and its one
``compliance.retention_purged`` event carrying the counts, in the same transaction.

A dry run (``dry_run=True``) changes nothing of the records: it stores its report as a PurgeRun with its
``compliance.retention_dry_run`` event, counted the way a real run at the same instant would count.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import TypeVar

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from flags.retention import flags_evidence_purge
from reviewapp.audit.actions import AuditAction
from reviewapp.audit.services import SYSTEM, record
from reviewapp.outbox.retention import outbox_email_bodies_purge

from . import selectors
from .models import PurgeRun

# Cases whose due-ness is re-checked at once, inside each batch's transaction.
_CASES_PER_CHECK = 200
_RUN_LOCK_KEY = int.from_bytes(b"retpurge", "big")
Removed = TypeVar("Removed")  # what an owner's purge returns of a batch


class PurgeUnderWay(Exception):
    """Another purge run holds the run lock; this one removed nothing."""


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _group_add(counts: dict, group: str, *, cases: int, flags: int, excerpts: int, due_at: datetime) -> None:
    entry = counts["evidence"].setdefault(group, {"cases": 0, "flags": 0, "excerpts": 0, "oldest_due": None})
    entry["cases"] += cases
    entry["flags"] += flags
    entry["excerpts"] += excerpts
    entry["oldest_due"] = _earliest(entry["oldest_due"], due_at)


def _earliest(oldest: str | None, when: datetime) -> str:
    """The earlier of a count's ``oldest`` (ISO 8601, as PurgeRun.counts stores it) and ``when``."""
    return when.isoformat() if oldest is None or when.isoformat() < oldest else oldest


def retention_purge(*, dry_run: bool = False, source: str = PurgeRun.Source.COMMAND, now: datetime | None = None,
                    batch_size: int | None = None) -> PurgeRun:
    """Purge (or, with ``dry_run``, report) what retention makes due at ``now`` (default: the start of the run).

    Raises PurgeUnderWay when another real run is in progress (they would only skip each other's rows).
    """
    started = timezone.now()
    now = now or started
    batch_size = batch_size or settings.RETENTION_PURGE_BATCH_SIZE
    key = uuid.uuid4()
    if dry_run:
        return _finish(key=key, source=source, dry_run=True, started=started, now=now, batch_size=batch_size,
                       batches=0, counts=selectors.purge_report(now=now))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s::bigint)", [_RUN_LOCK_KEY])
        if not cursor.fetchone()[0]:
            raise PurgeUnderWay("another retention purge is running")
    try:
        counts, batches = selectors.empty_counts(), 0
        batches += _purge_case_evidence(counts, now=now, batch_size=batch_size, run=str(key))
        batches += _purge_set_aside_evidence(counts, now=now, batch_size=batch_size, run=str(key))
        batches += _purge_email_bodies(counts, now=now, batch_size=batch_size, run=str(key))
        return _finish(key=key, source=source, dry_run=False, started=started, now=now, batch_size=batch_size,
                       batches=batches, counts=selectors.with_totals(counts))
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s::bigint)", [_RUN_LOCK_KEY])


def _purge_case_evidence(counts: dict, *, now: datetime, batch_size: int, run: str) -> int:
    batches = 0
    due = selectors.evidence_due_cases(now=now)
    for chunk in _chunks([case.case_id for case in due], _CASES_PER_CHECK):
        after_id, seen_cases = 0, set()
        while True:
            with transaction.atomic():
                # Due when the run began, and still due now that this batch holds its rows (a new appeal, say).
                still_due = {case.case_id: case for case in selectors.evidence_due_cases(now=now, case_ids=chunk)}
                held = selectors.held_flags_of_cases(case_ids=list(still_due), after_id=after_id, limit=batch_size)
                if not held:
                    break
                after_id = held[-1][0]
                removed = flags_evidence_purge(flag_ids=[flag for flag, _ in held], at=now, run=run)
            batches += 1
            case_of = dict(held)
            for flag_id, excerpts in removed.items():
                case = still_due[case_of[flag_id]]
                new_case = case.case_id not in seen_cases
                seen_cases.add(case.case_id)
                _group_add(counts, case.group, cases=int(new_case), flags=1, excerpts=excerpts, due_at=case.due_at)
    return batches


def _purge_set_aside_evidence(counts: dict, *, now: datetime, batch_size: int, run: str) -> int:
    def tally(set_aside_at: dict[int, datetime], removed: dict[int, int]) -> None:
        for flag_id, excerpts in removed.items():
            due_at = set_aside_at[flag_id] + timedelta(days=settings.RETENTION_UNDECIDED_EVIDENCE_DAYS)
            _group_add(counts, selectors.SET_ASIDE, cases=0, flags=1, excerpts=excerpts, due_at=due_at)

    return _purge_in_key_order(selectors.set_aside_due(now=now), key="flag_id", when="set_aside_at",
                               batch_size=batch_size, tally=tally,
                               purge=lambda flag_ids: flags_evidence_purge(flag_ids=flag_ids, at=now, run=run))


def _purge_email_bodies(counts: dict, *, now: datetime, batch_size: int, run: str) -> int:
    emails = counts["emails"]

    def tally(delivered_at: dict[int, datetime], changed: list[int]) -> None:
        for pk in changed:
            emails["messages"] += 1
            emails["oldest_delivered"] = _earliest(emails["oldest_delivered"], delivered_at[pk])

    return _purge_in_key_order(selectors.emails_due(now=now), key="id", when="delivered_at",
                               batch_size=batch_size, tally=tally,
                               purge=lambda ids: outbox_email_bodies_purge(message_ids=ids, at=now, run=run))


def _purge_in_key_order(due: QuerySet, *, key: str, when: str, batch_size: int, purge: Callable[[list[int]], Removed],
                        tally: Callable[[dict[int, datetime], Removed], None]) -> int:
    """Purge the rows of ``due`` (re-read in each batch's transaction, so a row no longer due is left) at most
    ``batch_size`` at a time, in ``key`` order from after the last batch's: a row the owner's purge skipped
    (another transaction holds it) is not tried again in this run. ``tally`` gets each batch's ``key`` → ``when``
    and what ``purge`` removed, once the batch has committed. Returns the number of batches."""
    batches, after = 0, 0
    while True:
        with transaction.atomic():
            rows = list(due.filter(**{f"{key}__gt": after}).order_by(key).values_list(key, when)[:batch_size])
            if not rows:
                return batches
            after = rows[-1][0]
            removed = purge([pk for pk, _ in rows])
        batches += 1
        tally(dict(rows), removed)


@transaction.atomic
def _finish(*, key, source, dry_run: bool, started: datetime, now: datetime, batch_size: int, batches: int,
            counts: dict) -> PurgeRun:
    run = PurgeRun.objects.create(key=key, source=source, dry_run=dry_run, started_at=started,
                                  finished_at=timezone.now(), as_of=now, batch_size=batch_size, batches=batches,
                                  counts=counts)
    record(actor=SYSTEM,
           action=AuditAction.COMPLIANCE_RETENTION_DRY_RUN if dry_run else AuditAction.COMPLIANCE_RETENTION_PURGED,
           target=run, data={"run": str(key), "source": source, "as_of": now.isoformat(), "counts": counts})
    return run
