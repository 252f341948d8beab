"""Removing flags' evidence under the retention policy (DESIGN.md invariant 8): the one write of a stored flag's
evidence there is.

What a detector said is never rewritten (the ``flags_read_only`` trigger); the evidence column is the exception,
and only towards the retention marker: ``flags_evidence_only_purged`` refuses any other change to it, and any
change at all once a flag carries the marker. The marker replaces the whole evidence object (the prompt excerpts
and every other key a detector sent: all of it is raw evidence, opened only through the audited reading of
``flags.evidence``) with ``{"removed_under_retention": {"at": <when>, "excerpts": <how many there were>}}``, so
pages say "removed under retention" instead of showing nothing, and the flag's other fields (detector, signal,
score, times, request count, content hash) stay for the records, calibration and the transparency report.

Which flags are due is the compliance console's rule (``reviewapp.compliance.retention``: it reads decisions,
clauses, appeals and second looks); this module only removes what it is handed, and writes one
``evidence.purged`` event per case in the same transaction, so each case's history shows when its evidence went.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Q

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.services import SYSTEM, Entry, Target, record_many
from reviewapp.cases.evidence import RETENTION_MARKER

# Evidence still held: present, and not yet replaced by the marker.
EVIDENCE_HELD = Q(evidence__isnull=False) & ~Q(evidence__has_key=RETENTION_MARKER)


def flags_evidence_purge(*, flag_ids: list[int], at: datetime, run: str = "") -> dict[int, int]:
    """Replace the evidence of the given flags by the retention marker; return {flag id: excerpts removed}.

    Flags whose evidence is already gone (or empty), and flags another transaction holds, are skipped, so a
    second call (or a concurrent run) removes nothing twice and never waits on a lock. One ``evidence.purged``
    event per case, in this transaction, names its flags and counts their excerpts; ``run`` labels the purge run.
    """
    if not flag_ids:
        return {}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            WITH chosen AS (
                SELECT id FROM flags_flag
                WHERE id = ANY(%s) AND evidence IS NOT NULL AND NOT (evidence ? %s)
                ORDER BY id FOR UPDATE SKIP LOCKED
            )
            UPDATE flags_flag f
               SET evidence = jsonb_build_object(%s::text, jsonb_build_object(
                   'at', %s::text,
                   'excerpts', CASE WHEN jsonb_typeof(f.evidence -> 'excerpts') = 'array'
                                    THEN jsonb_array_length(f.evidence -> 'excerpts') ELSE 0 END))
              FROM chosen
             WHERE f.id = chosen.id
            RETURNING f.id, f.case_id, (f.evidence -> %s ->> 'excerpts')::int
            """,
            [list(flag_ids), RETENTION_MARKER, RETENTION_MARKER, at.isoformat(), RETENTION_MARKER],
        )
        rows = cursor.fetchall()
        by_case: dict[int | None, list[tuple[int, int]]] = defaultdict(list)
        for flag_id, case_id, excerpts in rows:
            by_case[case_id].append((flag_id, excerpts))
        record_many([
            Entry(actor=SYSTEM, action=AuditAction.EVIDENCE_PURGED,
                  target=Target("cases.case", str(case_id)) if case_id is not None else None,
                  data={"flags": sorted(f for f, _ in flags), "excerpts": sum(e for _, e in flags), "run": run})
            for case_id, flags in sorted(by_case.items(), key=lambda item: item[0] or 0)
        ])
    return {flag_id: excerpts for flag_id, _, excerpts in rows}
