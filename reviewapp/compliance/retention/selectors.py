"""What the retention purge would remove now (DESIGN.md invariant 8): the rule, in one place.

Evidence (a flag's ``evidence``: its prompt excerpts and every other key the detector sent) is due for removal:

- of a case with decisions: once the last of them is older than the longest ``evidence_retention_days`` of the
  clauses it cites (policies/*.md; a clause's period as published in the version the decision was taken under).
  A decision of no violation cites its clause like any other and is kept as long. Sent-back and reversed decisions
  count too: the case's evidence is kept until every decision on it has passed its period. Its group is the clause
  that sets that date;
- of a case closed without any decision (the Forum withdrew everything it rested on): RETENTION_UNDECIDED_EVIDENCE_DAYS
  after it was closed (group ``NO_DECISION``);
- of a flag set aside before grouping (it has no case): RETENTION_UNDECIDED_EVIDENCE_DAYS after it was set aside
  (group ``SET_ASIDE``);
- never while its case is open, while an appeal against a decision on the case is open, while a sampled second
  look at one of them has not been given, or while a Forum share of the case, its account or its campaign awaits
  approval or its push has not left (the push rebuilds the bundle from the evidence and checks it against the
  approved hash: the purge must not make an approved share unsendable); never for a flag waiting to be grouped.

Delivered email bodies are due RETENTION_EMAIL_BODY_DAYS after delivery; pending and failed messages never.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Count, Min, QuerySet

from appeals.models import OPEN_APPEAL_STATES, Appeal
from flags.models import Flag, FlagSetAside
from flags.retention import EVIDENCE_HELD, RETENTION_MARKER
from reviewapp.cases.models import Case, Decision
from reviewapp.compliance.quality.models import SecondLook
from reviewapp.forum.models import ForumPush, ShareProposal
from reviewapp.outbox.models import OutboxMessage
from reviewapp.outbox.retention import EMAIL_BODY_HELD
from reviewapp.policy.models import Clause

from .models import PurgeRun

NO_DECISION = "closed without a decision"
SET_ASIDE = "set aside before grouping"

_EXCERPTS = ("CASE WHEN jsonb_typeof(f.evidence -> 'excerpts') = 'array' "
             "THEN jsonb_array_length(f.evidence -> 'excerpts') ELSE 0 END")
_HELD = "f.evidence IS NOT NULL AND NOT (f.evidence ? %(marker)s)"


def _due_cases_sql(*, only_cases: bool) -> str:
    """Cases whose evidence is due at %(now)s, with the group and the date it fell due (see the module's rule)."""
    decision, clauses = Decision._meta.db_table, Decision.clauses.through._meta.db_table
    return f"""
        WITH decided AS (
            SELECT DISTINCT ON (d.case_id) d.case_id, c.ref AS clause_ref,
                   d.decided_at + make_interval(days => c.evidence_retention_days) AS due_at
              FROM {decision} d
              JOIN {clauses} dc ON dc.decision_id = d.id
              JOIN {Clause._meta.db_table} c ON c.id = dc.clause_id
             {"WHERE d.case_id = ANY(%(cases)s)" if only_cases else ""}
             ORDER BY d.case_id, due_at DESC, c.ref
        )
        SELECT k.id AS case_id, coalesce(decided.clause_ref, %(no_decision)s) AS grp,
               coalesce(decided.due_at, k.closed_at + make_interval(days => %(undecided)s)) AS due_at
          FROM {Case._meta.db_table} k
          LEFT JOIN decided ON decided.case_id = k.id
         WHERE k.state IN (%(decided)s, %(closed)s)
           {"AND k.id = ANY(%(cases)s)" if only_cases else ""}
           AND coalesce(decided.due_at, k.closed_at + make_interval(days => %(undecided)s)) <= %(now)s
           AND NOT EXISTS (SELECT 1 FROM {decision} d JOIN {Appeal._meta.db_table} a ON a.decision_id = d.id
                            WHERE d.case_id = k.id AND a.state = ANY(%(open_appeals)s))
           AND NOT EXISTS (SELECT 1 FROM {decision} d JOIN {SecondLook._meta.db_table} s ON s.decision_id = d.id
                            WHERE d.case_id = k.id AND s.reviewed_at IS NULL)
           AND NOT EXISTS (SELECT 1 FROM {ShareProposal._meta.db_table} p
                            WHERE (p.case_id = k.id OR p.account_id = k.account_id OR p.campaign_id = k.campaign_id)
                              AND (p.state = %(share_waiting)s
                                   OR EXISTS (SELECT 1 FROM {ForumPush._meta.db_table} u
                                               WHERE u.proposal_id = p.id AND u.purpose = %(share_push)s
                                                 AND u.state = %(push_pending)s)))
    """  # noqa: S608 (table names from the models, values as parameters)


def _params(now: datetime, **extra) -> dict:
    return {"now": now, "undecided": settings.RETENTION_UNDECIDED_EVIDENCE_DAYS, "no_decision": NO_DECISION,
            "decided": Case.State.DECIDED.value, "closed": Case.State.CLOSED.value, "marker": RETENTION_MARKER,
            "open_appeals": [state.value for state in OPEN_APPEAL_STATES],
            "share_waiting": ShareProposal.State.AWAITING_APPROVAL.value, "share_push": ForumPush.Purpose.SHARE.value,
            "push_pending": ForumPush.State.PENDING.value, **extra}


@dataclass(frozen=True)
class DueCase:
    case_id: int
    group: str
    due_at: datetime


def evidence_due_cases(*, now: datetime, case_ids: list[int] | None = None) -> list[DueCase]:
    """Cases whose evidence is due at ``now`` (all of them, or those of ``case_ids``), oldest case first."""
    params = _params(now, cases=list(case_ids or []))
    with connection.cursor() as cursor:
        cursor.execute(_due_cases_sql(only_cases=case_ids is not None) + " ORDER BY k.id", params)
        return [DueCase(*row) for row in cursor.fetchall()]


def held_flags_of_cases(*, case_ids: list[int], after_id: int, limit: int) -> list[tuple[int, int]]:
    """(flag id, case id) of flags of these cases whose evidence is still held, by id after ``after_id``."""
    return list(Flag.objects.filter(EVIDENCE_HELD, case_id__in=case_ids, id__gt=after_id)
                .order_by("id").values_list("id", "case_id")[:limit])


def set_aside_due(*, now: datetime) -> QuerySet[FlagSetAside]:
    """Set-aside flags (no case) whose evidence is due at ``now``."""
    return (FlagSetAside.objects.filter(
        flag__case__isnull=True, flag__evidence__isnull=False,
        set_aside_at__lte=now - timedelta(days=settings.RETENTION_UNDECIDED_EVIDENCE_DAYS))
        .exclude(flag__evidence__has_key=RETENTION_MARKER))


def emails_due(*, now: datetime) -> QuerySet[OutboxMessage]:
    """Delivered emails whose body is due at ``now``."""
    return OutboxMessage.objects.filter(
        EMAIL_BODY_HELD, delivered_at__lte=now - timedelta(days=settings.RETENTION_EMAIL_BODY_DAYS))


def empty_counts() -> dict:
    return {"evidence": {}, "emails": {"messages": 0, "oldest_delivered": None},
            "totals": {"cases": 0, "flags": 0, "excerpts": 0, "emails": 0}}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def purge_report(*, now: datetime) -> dict:
    """What a purge at ``now`` would remove, in ``PurgeRun.counts``' shape: the dry run (three queries)."""
    counts = empty_counts()
    with connection.cursor() as cursor:
        cursor.execute(f"""
            WITH due AS ({_due_cases_sql(only_cases=False)})
            SELECT due.grp, count(DISTINCT due.case_id), count(f.id), coalesce(sum({_EXCERPTS}), 0), min(due.due_at)
              FROM due JOIN {Flag._meta.db_table} f ON f.case_id = due.case_id
             WHERE {_HELD}
             GROUP BY due.grp ORDER BY due.grp
        """, _params(now))  # noqa: S608
        for group, cases, flags, excerpts, oldest in cursor.fetchall():
            counts["evidence"][group] = {"cases": cases, "flags": flags, "excerpts": int(excerpts),
                                         "oldest_due": _iso(oldest)}
    set_aside = set_aside_due(now=now).aggregate(flags=Count("id"), oldest=Min("set_aside_at"))
    if set_aside["flags"]:
        excerpts = _excerpts_of(list(set_aside_due(now=now).values_list("flag_id", flat=True)))
        oldest = set_aside["oldest"] + timedelta(days=settings.RETENTION_UNDECIDED_EVIDENCE_DAYS)
        counts["evidence"][SET_ASIDE] = {"cases": 0, "flags": set_aside["flags"], "excerpts": excerpts,
                                         "oldest_due": _iso(oldest)}
    emails = emails_due(now=now).aggregate(messages=Count("id"), oldest=Min("delivered_at"))
    counts["emails"] = {"messages": emails["messages"], "oldest_delivered": _iso(emails["oldest"])}
    return with_totals(counts)


def _excerpts_of(flag_ids: list[int]) -> int:
    with connection.cursor() as cursor:
        sql = f"SELECT coalesce(sum({_EXCERPTS}), 0) FROM {Flag._meta.db_table} f WHERE f.id = ANY(%s)"  # noqa: S608
        cursor.execute(sql, [flag_ids])
        return int(cursor.fetchone()[0])


def with_totals(counts: dict) -> dict:
    groups = counts["evidence"].values()
    counts["totals"] = {"cases": sum(g["cases"] for g in groups), "flags": sum(g["flags"] for g in groups),
                        "excerpts": sum(g["excerpts"] for g in groups), "emails": counts["emails"]["messages"]}
    return counts


def group_label(group: str) -> str:
    return group if group in (NO_DECISION, SET_ASIDE) else f"decided under {group}"


def groups_for_display(counts: dict) -> list[dict]:
    """The evidence groups in reading order (clauses by reference, then the two rules without a clause), each
    with its ``label`` and counts."""
    special = (NO_DECISION, SET_ASIDE)
    evidence = counts.get("evidence", {})
    order = [g for g in sorted(evidence) if g not in special] + [g for g in special if g in evidence]
    return [{"group": g, "label": group_label(g), **evidence[g],
             "oldest_due": datetime.fromisoformat(evidence[g]["oldest_due"]) if evidence[g]["oldest_due"] else None}
            for g in order]


def runs_newest_first() -> QuerySet[PurgeRun]:
    return PurgeRun.objects.order_by("-finished_at", "-pk")


def last_run(*, dry_run: bool) -> PurgeRun | None:
    return runs_newest_first().filter(dry_run=dry_run).first()
