"""Grouping: pending flags (no case yet) attach to their account's open case, in batches.

Runs in Celery after ingestion commits, and from the periodic reconciler. Each batch is one
transaction over rows locked with SKIP LOCKED: several workers share the work without overlap, and a
worker killed mid-batch loses nothing (its transaction rolls back; the flags stay pending and the next
run takes them). A flag already attached is never touched again, so running twice is harmless.

Set-based and incremental: per batch a fixed number of statements (lock the pending flags, ensure the
accounts, open missing cases, attach the flags and sum them per case, add those sums to the cases, set
queue/priority/SLA, link campaigns, append the audit events). Nothing re-reads a case's earlier flags,
so a batch costs the same whether a case has one flag or a million (issue 8).

One row never stops grouping: when a batch fails on its data (a value PostgreSQL or Python cannot hold),
it is split in halves, each in a savepoint, down to the single flag that fails; that flag is set aside
(``FlagSetAside``, audited ``flags.set_aside``, shown on the Detectors page) and everything else is grouped.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime

from django.conf import settings
from django.db import DataError, IntegrityError, connection, transaction
from django.utils import timezone

from reviewapp.audit import sqlarray
from reviewapp.audit.actions import AuditAction
from reviewapp.audit.sequencer import sequence_on_commit
from reviewapp.audit.services import Actor, Entry, record_many
from reviewapp.cases.services import (
    accounts_ensure,
    campaigns_ensure,
    campaigns_link,
    cases_add_flags,
    open_cases_for,
)

log = logging.getLogger(__name__)

GROUPER = Actor(type="system", id="flags.grouping", display="flag grouping")

# Pending: no case and not set aside. The batch is chosen (and locked) by walking the partial index of
# flags without a case in id order, so a batch reads about ``limit`` entries however large the backlog or
# the table. The planner's statistics usually say "almost nothing is pending" (true between bursts), and
# then it prefers reading every pending row and sorting them: a cost that grows with the backlog, which
# made 100,000 flags take minutes. _BY_KEY_ONLY rules that plan out.
# The same holds for every statement of a batch (cases by account, accounts by external id, cases by id):
# each touches a batch's worth of rows by key, so index scans are always right, whatever stale statistics
# say. Set for the grouping transaction only, and reset when it is done (it may run inside a larger one).
# JIT off too: a disabled plan node's cost penalty would otherwise cross jit_above_cost, and compiling
# took 1.5 s of a 1,000-flag batch whose statements each run for milliseconds.
_BY_KEY_ONLY = ("SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off; "
                "SET LOCAL jit = off")
_PLANNER_DEFAULTS = "RESET enable_seqscan; RESET enable_bitmapscan; RESET enable_sort; RESET jit"
# In both: a partition of the pending flags, those whose account hashes to it. Groupers that each hold one
# partition (flags/tasks.py) never share an account, so they never wait for each other's account, case or
# row locks. With one partition (parts = 1) the test is constant and the planner drops it.
_PENDING = """
WITH batch AS (
    SELECT f.id, f.received_at FROM flags_flag f
    WHERE f.case_id IS NULL AND f.id > %(after)s
      AND (%(parts)s = 1 OR (hashtext(f.account_external_id) & 2147483647) %% %(parts)s = %(part)s)
      AND NOT EXISTS (SELECT 1 FROM flags_flagsetaside s WHERE s.flag_id = f.id)
    ORDER BY f.id
    LIMIT %(limit)s
    FOR NO KEY UPDATE SKIP LOCKED
)
SELECT f.id, f.external_id, f.account_external_id, f.organization_id, f.cluster_id, d.slug, f.detector_id,
       f.received_at
-- By the whole primary key (id, received_at): each row read from its own month's partition only.
FROM batch JOIN flags_flag f ON f.id = batch.id AND f.received_at = batch.received_at
JOIN flags_detector d ON d.id = f.detector_id
"""
_PENDING_COUNT = """
SELECT count(*) FROM flags_flag f
WHERE f.case_id IS NULL AND NOT EXISTS (SELECT 1 FROM flags_flagsetaside s WHERE s.flag_id = f.id)
"""
_ANY_PENDING_IN = """
SELECT EXISTS (SELECT 1 FROM flags_flag f WHERE f.case_id IS NULL
               AND (%(parts)s = 1 OR (hashtext(f.account_external_id) & 2147483647) %% %(parts)s = %(part)s)
               AND NOT EXISTS (SELECT 1 FROM flags_flagsetaside s WHERE s.flag_id = f.id))
"""
_OLDEST_PENDING = """
SELECT f.received_at FROM flags_flag f
WHERE f.case_id IS NULL AND NOT EXISTS (SELECT 1 FROM flags_flagsetaside s WHERE s.flag_id = f.id)
ORDER BY f.id LIMIT 1
"""
# Attach: give each flag of the batch its case, returning what the case's aggregates need (cases_add_flags sums
# them per case and writes each case once, in the same statement: no flag row passes through Python).
# The rows are found by primary key (``id = ANY``) only. No "case_id IS NULL" test: this transaction holds
# them locked as pending, and that test invites the planner to read every flag without a case (above).
# The batch's received_at bounds (constants) leave out the months none of its flags is in (flags_flag is
# partitioned by month of received_at; docs/flags-indexes.md): one or two partitions, however many there are.
_ATTACH = """
UPDATE flags_flag f SET case_id = m.case_id
FROM unnest(%(flags)s::bigint[], %(cases)s::bigint[]) AS m(flag_id, case_id)
WHERE f.id = ANY(%(flags)s::bigint[]) AND f.id = m.flag_id
  AND f.received_at >= %(received_from)s AND f.received_at <= %(received_to)s
RETURNING f.case_id, f.signal, f.request_count, f.score, f.observed_to
"""
# Errors that say "this data cannot be stored or computed", as opposed to a lost connection or a deadlock
# (which leave the flags pending for the next run rather than setting any aside).
_DATA_ERRORS = (DataError, IntegrityError, ArithmeticError, ValueError, TypeError, KeyError)
_MAX_REASON_CHARS = 1000


@dataclass(frozen=True)
class GroupingRun:
    flags: int
    cases: int
    set_aside: int = 0
    last_id: int = 0  # the highest flag id this run took: a caller looping over a backlog passes it on

    @property
    def taken(self) -> int:
        """Pending flags this run dealt with (grouped or set aside): loop while it is non-zero."""
        return self.flags + self.set_aside


@dataclass(frozen=True)
class Partition:
    """Part ``part`` of ``parts``: the pending flags whose account hashes to it (``hashtext`` in PostgreSQL)."""

    part: int = 0
    parts: int = 1

    def params(self) -> dict[str, int]:
        return {"part": self.part, "parts": self.parts}


def pending_in(partition: Partition) -> bool:
    """Whether any flag of ``partition`` is pending (read through the pending index, as a batch is)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_BY_KEY_ONLY)
        cursor.execute(_ANY_PENDING_IN, partition.params())
        found = cursor.fetchone()[0]
        cursor.execute(_PLANNER_DEFAULTS)
    return found


@dataclass(frozen=True, order=True)
class _Pending:
    id: int
    external_id: str
    account: str
    organization: str
    cluster_id: str
    detector_slug: str
    detector_id: int
    received_at: datetime


def flags_group(*, limit: int | None = None, after_id: int = 0, sequence: bool = True,
                partition: Partition | None = None) -> GroupingRun:
    """Attach up to ``limit`` pending flags (default ``FLAGS_GROUP_BATCH_SIZE``) to cases.

    Returns how many flags and cases it touched and how many flags it set aside. ``after_id`` (a previous
    run's ``last_id``) skips the flags below it: attached flags leave dead entries in the pending index
    until vacuum, and a loop over a large backlog would otherwise walk past all of them for every batch.
    A flag below it that commits late is not lost: its ingestion requests a grouping task of its own, and
    every task starts from the lowest id.

    ``partition`` takes only the flags of that partition's accounts (see ``Partition``); default all.
    ``sequence=False`` leaves the batch's audit events to the next sequencer run instead of sequencing them
    right after the commit: the grouping task does that once after all its batches (flags/tasks.py).
    """
    limit = limit or settings.FLAGS_GROUP_BATCH_SIZE
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_BY_KEY_ONLY)
        cursor.execute(_PENDING, {"after": after_id, "limit": limit, **(partition or Partition()).params()})
        pending = sorted(_Pending(*row) for row in cursor.fetchall())
        run = _group_pending(pending) if pending else GroupingRun(0, 0)
        cursor.execute(_PLANNER_DEFAULTS)
        if sequence and pending:
            sequence_on_commit()
        return replace(run, last_id=pending[-1].id) if pending else run


def _group_pending(pending: list[_Pending]) -> GroupingRun:
    try:
        with transaction.atomic():
            return _group(pending)
    except _DATA_ERRORS as exc:
        log.warning("grouping %d flags failed (%s); isolating the flag that fails", len(pending), exc)
    return _group_isolating(pending)


def _group_isolating(pending: list[_Pending]) -> GroupingRun:
    """Group ``pending`` in halves, each in a savepoint, down to single flags; set aside each that fails."""
    flags = cases = set_aside = 0
    parts = [pending]
    while parts:
        part = parts.pop()
        try:
            with transaction.atomic():
                run = _group(part)
        except _DATA_ERRORS as exc:
            if len(part) == 1:
                _set_aside(part[0], reason=_reason(exc))
                set_aside += 1
            else:
                middle = len(part) // 2
                parts.extend([part[middle:], part[:middle]])  # the first half next: flags stay in id order
            continue
        flags, cases = flags + run.flags, cases + run.cases
    return GroupingRun(flags, cases, set_aside)


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:_MAX_REASON_CHARS]


def _set_aside(flag: _Pending, *, reason: str) -> None:
    from .models import FlagSetAside

    aside = FlagSetAside.objects.create(flag_id=flag.id, detector_id=flag.detector_id, reason=reason)
    log.error("flag %s (%s:%s) set aside: %s", flag.id, flag.detector_slug, flag.external_id, reason)
    record_many([Entry(actor=GROUPER, action=AuditAction.FLAGS_SET_ASIDE, target=aside, data={
        "flag": flag.id, "detector": flag.detector_slug, "external_id": flag.external_id, "reason": reason})])


def _group(pending: list[_Pending]) -> GroupingRun:
    now = timezone.now()
    organizations: dict[str, str] = {}
    for flag in pending:
        organizations.setdefault(flag.account, flag.organization)
    account_pk = accounts_ensure(accounts=organizations)
    flags_of_account: dict[int, list[str]] = defaultdict(list)
    cluster_of_account: dict[int, str] = {}  # the first cluster the account's flags name, in flag order
    for flag in pending:
        account = account_pk[flag.account]
        flags_of_account[account].append(flag.external_id)
        if flag.cluster_id:
            cluster_of_account.setdefault(account, f"{flag.detector_slug}:{flag.cluster_id}")
    events: list[Entry] = []
    campaigns = campaigns_ensure(keys=set(cluster_of_account.values()), actor=GROUPER, events=events)
    case_of_account, opened = open_cases_for(account_ids=set(flags_of_account), actor=GROUPER,
                                             opened_by=flags_of_account, campaign_of=cluster_of_account,
                                             campaigns=campaigns, events=events)
    flag_ids = [flag.id for flag in pending]
    case_ids = [case_of_account[account_pk[flag.account]] for flag in pending]
    added = cases_add_flags(attached=_ATTACH, case_ids=case_ids, now=now, params={
        "flags": sqlarray.ints(flag_ids), "cases": sqlarray.ints(case_ids),
        "received_from": min(flag.received_at for flag in pending),
        "received_to": max(flag.received_at for flag in pending)})
    # Cases opened here were opened in their campaign; an earlier case may join one now.
    campaigns_link(case_clusters={case_of_account[account]: key for account, key in cluster_of_account.items()
                                  if case_of_account[account] not in opened},
                   actor=GROUPER, events=events, campaigns=campaigns)
    # Every event of the batch in one append, last; flags_group says when they are sequenced (after the commit).
    events.append(Entry(actor=GROUPER, action=AuditAction.FLAGS_GROUPED, data={
        "flags": added.flags, "first_flag": flag_ids[0], "last_flag": flag_ids[-1], "cases": added.cases}))
    record_many(events, sequence_after_commit=False)
    return GroupingRun(added.flags, len(added.cases))


# --- Selectors of pending work (for the reconciler and /healthz) --------------------------------------

def pending_count() -> int:
    """Flags without a case that grouping will still take (set-aside flags are not pending)."""
    with connection.cursor() as cursor:
        cursor.execute(_PENDING_COUNT)
        return cursor.fetchone()[0]


def oldest_pending_at() -> datetime | None:
    """When the oldest pending flag was received (``None`` when nothing is pending).

    The lowest pending id stands for the oldest: ids grow with ingestion, and this reads one index entry
    instead of every pending row.
    """
    with connection.cursor() as cursor:
        cursor.execute(_OLDEST_PENDING)
        row = cursor.fetchone()
    return row[0] if row else None


def oldest_pending_age_seconds() -> float:
    """Seconds since the oldest pending flag was received; 0.0 when nothing is pending."""
    oldest = oldest_pending_at()
    return max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0
