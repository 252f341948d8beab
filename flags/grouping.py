"""Grouping: pending flags (no case yet) attach to their account's open case, in batches.

Runs in Celery after ingestion commits, and from the periodic reconciler. Each batch is one
transaction over rows locked with SKIP LOCKED: several workers share the work without overlap, and a
worker killed mid-batch loses nothing (its transaction rolls back; the flags stay pending and the next
run takes them). A flag already attached is never touched again, so running twice is harmless.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.db import connection, transaction

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.services import Actor, record
from reviewapp.cases.services import CaseAggregate, accounts_ensure, campaigns_link, cases_refresh, open_cases_for

GROUPER = Actor(type="system", id="flags.grouping", display="flag grouping")

_PENDING = """
SELECT f.id, f.external_id, f.account_external_id, f.organization_id, f.cluster_id, d.slug
FROM flags_flag f JOIN flags_detector d ON d.id = f.detector_id
WHERE f.case_id IS NULL
ORDER BY f.id
LIMIT %s
FOR NO KEY UPDATE OF f SKIP LOCKED
"""
_ATTACH = """
UPDATE flags_flag f SET case_id = m.case_id
FROM unnest(%s::bigint[], %s::bigint[]) AS m(flag_id, case_id)
WHERE f.id = m.flag_id AND f.case_id IS NULL
"""
_AGGREGATE = """
SELECT case_id, array_agg(DISTINCT signal), count(*), coalesce(sum(request_count), 0), max(score), max(observed_to)
FROM flags_flag WHERE case_id = ANY(%s) GROUP BY case_id
"""


@dataclass(frozen=True)
class GroupingRun:
    flags: int
    cases: int


@transaction.atomic
def flags_group(*, limit: int = 1000) -> GroupingRun:
    """Attach up to ``limit`` pending flags to cases. Returns how many flags and cases it touched."""
    with connection.cursor() as cursor:
        cursor.execute(_PENDING, [limit])
        pending = cursor.fetchall()
    if not pending:
        return GroupingRun(0, 0)
    organizations: dict[str, str] = {}
    for _, _, account, organization, _, _ in pending:
        organizations.setdefault(account, organization)
    account_pk = accounts_ensure(accounts=organizations)
    flags_of_account: dict[int, list[str]] = defaultdict(list)
    for _, external_id, account, _, _, _ in pending:
        flags_of_account[account_pk[account]].append(external_id)
    case_of_account = open_cases_for(account_ids=set(flags_of_account), actor=GROUPER, opened_by=flags_of_account)

    flag_ids, case_ids, clusters = [], [], {}
    for flag_id, _, account, _, cluster_id, detector_slug in pending:
        case_id = case_of_account[account_pk[account]]
        flag_ids.append(flag_id)
        case_ids.append(case_id)
        if cluster_id:
            clusters.setdefault(case_id, f"{detector_slug}:{cluster_id}")
    touched = sorted(set(case_ids))
    with connection.cursor() as cursor:
        cursor.execute(_ATTACH, [flag_ids, case_ids])
        cursor.execute(_AGGREGATE, [touched])
        aggregates = [CaseAggregate(*row) for row in cursor.fetchall()]
    cases_refresh(aggregates=aggregates)
    if clusters:
        campaigns_link(case_clusters=clusters, actor=GROUPER)
    record(actor=GROUPER, action=AuditAction.FLAGS_GROUPED,
           data={"flags": len(flag_ids), "first_flag": flag_ids[0], "last_flag": flag_ids[-1], "cases": touched})
    return GroupingRun(len(flag_ids), len(touched))


def pending_count() -> int:
    from .models import Flag

    return Flag.objects.filter(case__isnull=True).count()
