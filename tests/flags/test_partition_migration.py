"""flags 0007 (and 0008): today's populated flags_flag becomes the table partitioned by month, and back (issue 12).

The test database is migrated back to flags 0006 (Django's MigrationExecutor, as django-test-migrations does),
flags are stored the old way across four past months and this one (grouped, pending, one set aside), and the
migration runs forward: the same rows with the same ids, each in its month's partition, the id sequence going on
where it stood, every key in flags_flagkey and refused a second time across partitions, the triggers on every
partition, ingestion and grouping working after. Then backwards to 0006 (the same rows again, the unique
constraint and the set-aside foreign key back), and forward to the latest migrations for the tests after.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import psycopg
import pytest
from django.db import IntegrityError, ProgrammingError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from flags.grouping import flags_group
from flags.models import Flag, FlagKey
from flags.services import flags_ingest
from reviewapp.audit.services import SYSTEM
from tests.conftest import flag_payload

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("flags_migration")]

BEFORE = [("flags", "0006_flag_evidence_only_purged")]
AFTER = [("flags", "0008_flags_partitions_for_default_rows")]
MONTHS = [datetime(2026, m, 15, 12, tzinfo=UTC) for m in (7, 8, 9, 10)]
_COLUMNS = ("id, external_id, schema_version, detector_version, account_external_id, organization_id, signal, "
            "score, observed_from, observed_to, request_count, cluster_id, evidence, content_hash, received_at, "
            "case_id, detector_id, batch_id")


def _migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def _latest() -> list[tuple[str, str]]:
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()


def _sql(statement: str, params=None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def _rows() -> list[tuple]:
    return _sql(f"SELECT {_COLUMNS} FROM flags_flag ORDER BY id")


def _store_old_way(detector_id: int, batch_id: int, n: int, received_at: datetime) -> int:
    """A flag as today's (0006) table takes it: its identity id, its unique (detector, external_id)."""
    return _sql(
        """
        INSERT INTO flags_flag (detector_id, external_id, schema_version, detector_version, account_external_id,
            organization_id, signal, score, observed_from, observed_to, request_count, cluster_id, evidence,
            content_hash, batch_id, received_at)
        VALUES (%s, %s, 1, '3.2.0', %s, '', 'templated_prompts', 0.8, %s, %s, 100, '', %s::jsonb, %s, %s, %s)
        RETURNING id
        """,
        [detector_id, f"f-{n}", f"acct_{n % 3}", received_at, received_at,
         json.dumps({"excerpts": [f"prompt {n}"]}), f"{n:064d}", batch_id, received_at])[0][0]


def _shape(table: str = "flags_flag") -> dict:
    """What the round trip must give back: relkind, constraints, indexes, triggers (by name and definition)."""
    return {
        "kind": _sql("SELECT relkind FROM pg_class WHERE oid = %s::regclass", [table])[0][0],
        "constraints": sorted(_sql("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                                   "WHERE conrelid = %s::regclass OR confrelid = %s::regclass", [table, table])),
        "indexes": sorted(_sql("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [table])),
        "triggers": sorted(_sql("SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger "
                                "WHERE tgrelid = %s::regclass AND NOT tgisinternal", [table])),
    }


def _refused_by_trigger(statement: str) -> None:
    with pytest.raises(ProgrammingError) as caught, transaction.atomic():
        _sql(statement)
    assert isinstance(caught.value.__cause__, psycopg.errors.RaiseException), caught.value
    assert "Cannot update rows" in str(caught.value)


def test_a_populated_table_is_partitioned_by_month_and_back(detector):
    _migrate(BEFORE)
    try:
        _check_round_trip(detector)
    finally:
        _migrate(_latest())


def _check_round_trip(detector):
    old_shape = _shape()
    assert old_shape["kind"] == "r"
    batch = _sql("INSERT INTO flags_flagbatch (detector_id, source, received_at, created, duplicates, conflicts, "
                 "rejected) VALUES (%s, 'file', now(), 0, 0, 0, 0) RETURNING id", [detector.pk])[0][0]
    now = timezone.now()
    # Three flags per past month and two of this month; the first eight grouped into cases, the rest pending,
    # one of those set aside (grouping could not attach it).
    for n, received_at in enumerate([m for m in MONTHS for _ in range(3)] + [now, now]):
        _store_old_way(detector.pk, batch, n, received_at)
    assert flags_group(limit=8).flags == 8  # today's grouping code on today's table
    set_aside = _sql("SELECT max(id) FROM flags_flag")[0][0]
    _sql("INSERT INTO flags_flagsetaside (flag_id, detector_id, reason, set_aside_at) VALUES (%s, %s, 'test', now())",
         [set_aside, detector.pk])
    _sql("SELECT nextval(pg_get_serial_sequence('flags_flag', 'id'))")  # a consumed id is never given again
    (last_id,) = _sql("SELECT last_value FROM flags_flag_id_seq")[0]
    before = _rows()
    assert len(before) == 14 and sum(row[15] is not None for row in before) == 8

    _migrate(AFTER)

    assert _sql("SELECT relkind FROM pg_class WHERE oid = 'flags_flag'::regclass")[0][0] == "p"
    assert _rows() == before  # the same rows, the same ids
    placed = _sql("SELECT id, received_at, tableoid::regclass::text FROM flags_flag")
    assert all(part == f"flags_flag_{at.astimezone(UTC):%Y_%m}" for _, at, part in placed), placed
    assert {part for _, _, part in placed} == {f"flags_flag_{m:%Y_%m}" for m in MONTHS} | {f"flags_flag_{now:%Y_%m}"}
    partitions = {name for (name,) in _sql("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                                           "WHERE i.inhparent = 'flags_flag'::regclass")}
    # Every month from the oldest row's to two after this one (November too, which has no row), and DEFAULT.
    months = (now.year - 2026) * 12 + now.month - 7 + 1 + 2
    assert "flags_flag_default" in partitions and len(partitions) == months + 1
    assert _sql("SELECT count(*) FROM flags_flag_default")[0][0] == 0
    assert sorted(FlagKey.objects.values_list("flag_id", "received_at")) == [(row[0], row[14]) for row in before]

    # Uniqueness across partitions: a July flag's key is refused again, by the key table, today.
    with pytest.raises(IntegrityError), transaction.atomic():
        FlagKey.objects.create(detector_id=detector.pk, external_id="f-0", flag_id=10**9, received_at=now)
    replay = flags_ingest(items=[(0, json.dumps(flag_payload(0)).encode())], detector=detector, actor=SYSTEM)
    assert (replay.created, replay.duplicates) == (0, 1)  # f-0 was stored in July: a duplicate (a conflict too)
    assert len(replay.conflicts) == 1

    # Triggers on every partition, cloned from the partitioned table: refused on the partition itself too.
    for month in MONTHS:
        _refused_by_trigger(f"UPDATE flags_flag_{month:%Y_%m} SET score = 0")
    _refused_by_trigger("UPDATE flags_flag SET account_external_id = 'someone_else'")
    clones = _sql("SELECT count(*) FROM pg_trigger t JOIN pg_inherits i ON i.inhrelid = t.tgrelid "
                  "WHERE i.inhparent = 'flags_flag'::regclass AND t.tgname LIKE 'pgtrigger_flags_%%'")[0][0]
    assert clones == len(partitions) * 2  # the two row triggers (the TRUNCATE one is the partitioned table's)

    # Ingestion and grouping after: ids go on after the last one given; every pending flag but the set-aside one
    # is grouped, old months' too.
    fresh = flags_ingest(items=[(i, json.dumps(flag_payload(100 + i)).encode()) for i in range(3)],
                         detector=detector, actor=SYSTEM)
    assert fresh.created == 3
    new_ids = sorted(Flag.objects.filter(external_id__in=["f-100", "f-101", "f-102"]).values_list("id", flat=True))
    assert new_ids[0] > last_id
    while flags_group(limit=100).taken:
        pass
    assert list(Flag.objects.filter(case__isnull=True).values_list("id", flat=True)) == [set_aside]

    _migrate(BEFORE)

    assert _shape() == old_shape  # the plain table, its unique constraint and the set-aside foreign key again
    after_back = _rows()
    assert [row[0] for row in after_back] == [row[0] for row in before] + new_ids
    assert after_back[:len(before)] == [(*row[:15], after_back[i][15], *row[16:]) for i, row in enumerate(before)]
    with pytest.raises(IntegrityError), transaction.atomic():
        _store_old_way(detector.pk, batch, 0, now)  # f-0 again: the unique constraint refuses it
