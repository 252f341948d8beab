"""Monthly partitions of flags_flag, created ahead (issue 12; docs/flags-partitions.md, docs/flags-indexes.md).

flags_flag is partitioned by RANGE of ``received_at`` (server time at ingestion, so always about now: the months
ahead are known; the detector-supplied observed_* times are not bounded and are not the key), one partition per
UTC month, named ``flags_flag_YYYY_MM``, plus ``flags_flag_default``, so an insert never fails for want of a
partition. The maintenance task (Celery beat, daily, maintenance queue) and ``manage.py flags_partitions`` make
sure this month and the next ``MONTHS_AHEAD`` exist, and every month whose flags wait in DEFAULT (the task had
not run in time: they move into their month's partition); both are idempotent.

The work is done by ``flags_flag_partitions_ensure``, a SECURITY DEFINER function of the schema's owner (migrations
flags 0007 and 0008): the application role creates no tables, and each partition it makes gives that role no privilege
of its own (reviewapp/core/db_roles.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection, transaction

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.services import SYSTEM, Actor, record

# This month and the next three: a month of beat being down still finds its partition there.
MONTHS_AHEAD = 3
DEFAULT_PARTITION = "flags_flag_default"


@dataclass(frozen=True)
class FlagPartition:
    name: str
    bounds: str  # PostgreSQL's own words: "FOR VALUES FROM (...) TO (...)" or "DEFAULT"
    rows: int  # the planner's estimate (pg_class.reltuples); -1 before the first ANALYZE


@transaction.atomic
def flags_partitions_ensure(*, months_ahead: int = MONTHS_AHEAD, actor: Actor = SYSTEM) -> list[str]:
    """Create the partitions of this month and the next ``months_ahead`` that are missing; return their names.

    Audited (``flags.partitions_created``) when it creates any; a run that finds them all writes nothing.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT flags_flag_partitions_ensure(%s)", [months_ahead])
        created = [name for (name,) in cursor.fetchall()]
    if created:
        record(actor=actor, action=AuditAction.FLAGS_PARTITIONS_CREATED,
               data={"partitions": created, "months_ahead": months_ahead})
    return created


def flag_partitions() -> list[FlagPartition]:
    """The partitions of flags_flag, oldest first, the DEFAULT one last."""
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), c.reltuples::bigint
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'flags_flag'::regclass
            ORDER BY c.relname = %s, c.relname
        """, [DEFAULT_PARTITION])
        return [FlagPartition(name, bounds, rows) for name, bounds, rows in cursor.fetchall()]


def flags_in_default_partition() -> int:
    """Flags that found no month's partition (0 when the task keeps ahead): exact, the partition is small.
    Through the owner's function: the application role may not read a partition itself."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT flags_flag_default_count()")
        return cursor.fetchone()[0]
