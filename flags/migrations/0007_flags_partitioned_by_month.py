"""flags_flag becomes a table partitioned by month of received_at; (detector, external_id) moves to flags_flagkey.

Issue 12 ("the flags table partitioned by month"); docs/flags-indexes.md says why each index exists and
docs/flags-partitions.md how to run this on a table too large for one transaction.

Forwards, in one transaction (the table is locked for its length):
1. the populated table steps aside (renamed with its identity sequence; the names its indexes and constraints
   hold are freed; the one foreign key that references it, from flags_flagsetaside, is dropped: a foreign key
   can only reference a unique constraint, and on a partitioned table those must include received_at);
2. flags_flag is created again with the same columns, ``PARTITION BY RANGE (received_at)``, a DEFAULT partition
   and one partition per month from the oldest row's month to two months ahead of now (UTC months), made by
   ``flags_flag_partition_create``, the function the maintenance task uses through ``flags_flag_partitions_ensure``;
3. the rows are copied with their ids, the new identity sequence continues where the old one stood (never a
   reused id), every key goes into flags_flagkey (created by this migration, its primary key the old unique
   constraint), the indexes are built after the copy (primary key (id, received_at), pending, account, case), the
   foreign key to cases_case is added again, the pgtrigger triggers are installed on the new table (PostgreSQL
   clones row triggers onto every partition, present and future);
4. the old table goes.

Backwards does the opposite: one plain table, the rows with their ids, the unique (detector_id, external_id)
constraint and the foreign key from flags_flagsetaside again; flags_flagkey and the functions go.
"""

from django.db import migrations, models

import pgtrigger.compiler
import pgtrigger.migrations

_COLUMNS = ("id, external_id, schema_version, detector_version, account_external_id, organization_id, signal, "
            "score, observed_from, observed_to, request_count, cluster_id, evidence, content_hash, received_at, "
            "case_id, detector_id, batch_id")

# Django's own names for the case foreign key, its index, and the flag set aside's foreign key (derived from the
# table and column names, so the same in every database; the round trip test compares them).
_CASE_INDEX = "flags_flag_case_id_1cb3962c"
_CASE_FK = "flags_flag_case_id_1cb3962c_fk_cases_case_id"
_SET_ASIDE_FK = "flags_flagsetaside_flag_id_896be110_fk_flags_flag_id"

# One month's partition, named flags_flag_YYYY_MM, for [first of the month, first of the next) in UTC. Created
# detached and attached after (ATTACH PARTITION takes SHARE UPDATE EXCLUSIVE on flags_flag, where CREATE TABLE
# ... PARTITION OF takes ACCESS EXCLUSIVE and would stop every reader of the flags for its length); rows of that
# month already in the DEFAULT partition (the task did not run in time) move into it first, or the attach would
# fail. The application role gets no privilege on the partition (it reaches the rows through flags_flag, whose
# privileges are the ones checked): the owner's default privileges would otherwise give it DELETE on it.
# SECURITY DEFINER: the application role creates no tables; search_path is pinned (below) against lookalikes.
_FUNCTIONS = """
CREATE FUNCTION flags_flag_partition_create(month date) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET lock_timeout = '5s' AS $fn$
DECLARE
    lo timestamptz := date_trunc('month', month::timestamp) AT TIME ZONE 'UTC';
    hi timestamptz := (date_trunc('month', month::timestamp) + interval '1 month') AT TIME ZONE 'UTC';
    part text := 'flags_flag_' || to_char(month, 'YYYY_MM');
    grantee oid;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
               WHERE i.inhparent = 'flags_flag'::regclass AND c.relname = part) THEN
        RETURN NULL;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE flags_flag INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
    IF EXISTS (SELECT 1 FROM flags_flag_default WHERE received_at >= lo AND received_at < hi) THEN
        LOCK TABLE flags_flag_default IN ACCESS EXCLUSIVE MODE;
        EXECUTE format('INSERT INTO %I SELECT * FROM flags_flag_default WHERE received_at >= $1 AND received_at < $2',
                       part) USING lo, hi;
        DELETE FROM flags_flag_default WHERE received_at >= lo AND received_at < hi;
    END IF;
    EXECUTE format('ALTER TABLE flags_flag ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
    FOR grantee IN SELECT DISTINCT a.grantee FROM pg_class c, aclexplode(c.relacl) a
                   WHERE c.oid = part::regclass AND a.grantee <> c.relowner LOOP
        IF grantee = 0 THEN
            EXECUTE format('REVOKE ALL ON %I FROM PUBLIC', part);
        ELSE
            EXECUTE format('REVOKE ALL ON %I FROM %s', part, grantee::regrole);
        END IF;
    END LOOP;
    RETURN part;
END
$fn$;

CREATE FUNCTION flags_flag_partitions_ensure(months_ahead integer) RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER AS $fn$
DECLARE
    this_month date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
    created text;
BEGIN
    IF months_ahead < 0 OR months_ahead > 24 THEN
        RAISE EXCEPTION 'months_ahead must be between 0 and 24, not %', months_ahead;
    END IF;
    FOR i IN 0..months_ahead LOOP
        created := flags_flag_partition_create((this_month + make_interval(months => i))::date);
        IF created IS NOT NULL THEN
            RETURN NEXT created;
        END IF;
    END LOOP;
END
$fn$;

DO $do$ BEGIN
    EXECUTE format('ALTER FUNCTION flags_flag_partition_create(date) SET search_path = %I, pg_temp', current_schema());
    EXECUTE format('ALTER FUNCTION flags_flag_partitions_ensure(integer) SET search_path = %I, pg_temp',
                   current_schema());
END $do$;
-- Only through flags_flag_partitions_ensure (a bounded window from this month), and only for roles db_roles names.
REVOKE EXECUTE ON FUNCTION flags_flag_partition_create(date) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION flags_flag_partitions_ensure(integer) FROM PUBLIC;
"""

FORWARDS = f"""
LOCK TABLE flags_flag IN ACCESS EXCLUSIVE MODE;
DO $do$ DECLARE fk record; BEGIN
    FOR fk IN SELECT conrelid::regclass AS tab, conname FROM pg_constraint WHERE confrelid = 'flags_flag'::regclass LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', fk.tab, fk.conname);
    END LOOP;
END $do$;
ALTER TABLE flags_flag RENAME TO flags_flag_unpartitioned;
ALTER SEQUENCE flags_flag_id_seq RENAME TO flags_flag_unpartitioned_id_seq;
ALTER TABLE flags_flag_unpartitioned RENAME CONSTRAINT flags_flag_pkey TO flags_flag_unpartitioned_pkey;
ALTER TABLE flags_flag_unpartitioned DROP CONSTRAINT flags_unique_per_detector;
DROP INDEX flags_pending_idx, flags_account_idx, {_CASE_INDEX};

CREATE TABLE flags_flag (LIKE flags_flag_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY)
    PARTITION BY RANGE (received_at);
CREATE TABLE flags_flag_default PARTITION OF flags_flag DEFAULT;
DO $do$ DECLARE grantee oid; BEGIN  -- as flags_flag_partition_create does for a month's partition
    FOR grantee IN SELECT DISTINCT a.grantee FROM pg_class c, aclexplode(c.relacl) a
                   WHERE c.oid = 'flags_flag_default'::regclass AND a.grantee <> c.relowner LOOP
        EXECUTE format('REVOKE ALL ON flags_flag_default FROM %s',
                       CASE WHEN grantee = 0 THEN 'PUBLIC' ELSE grantee::regrole::text END);
    END LOOP;
END $do$;
{_FUNCTIONS}
SELECT flags_flag_partition_create(month::date)
FROM generate_series(
    date_trunc('month', coalesce((SELECT min(received_at) FROM flags_flag_unpartitioned), now()) AT TIME ZONE 'UTC'),
    date_trunc('month', greatest((SELECT max(received_at) FROM flags_flag_unpartitioned), now()) AT TIME ZONE 'UTC')
        + interval '2 months',
    interval '1 month') AS month;

INSERT INTO flags_flag ({_COLUMNS}) SELECT {_COLUMNS} FROM flags_flag_unpartitioned;
SELECT setval(pg_get_serial_sequence('flags_flag', 'id'), last_value, is_called) FROM flags_flag_unpartitioned_id_seq;
INSERT INTO flags_flagkey (detector_id, external_id, flag_id, received_at)
SELECT detector_id, external_id, id, received_at FROM flags_flag_unpartitioned;

ALTER TABLE flags_flag ADD CONSTRAINT flags_flag_pkey PRIMARY KEY (id, received_at);
CREATE INDEX flags_pending_idx ON flags_flag (id) WHERE case_id IS NULL;
CREATE INDEX flags_account_idx ON flags_flag (account_external_id);
CREATE INDEX {_CASE_INDEX} ON flags_flag (case_id);
ALTER TABLE flags_flag ADD CONSTRAINT {_CASE_FK} FOREIGN KEY (case_id) REFERENCES cases_case (id)
    DEFERRABLE INITIALLY DEFERRED;
DROP TABLE flags_flag_unpartitioned;
"""

BACKWARDS = f"""
LOCK TABLE flags_flag IN ACCESS EXCLUSIVE MODE;
ALTER TABLE flags_flag RENAME TO flags_flag_partitioned;
ALTER SEQUENCE flags_flag_id_seq RENAME TO flags_flag_partitioned_id_seq;
ALTER TABLE flags_flag_partitioned RENAME CONSTRAINT flags_flag_pkey TO flags_flag_partitioned_pkey;
DROP INDEX flags_pending_idx, flags_account_idx, {_CASE_INDEX};

CREATE TABLE flags_flag (LIKE flags_flag_partitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY);
INSERT INTO flags_flag ({_COLUMNS}) SELECT {_COLUMNS} FROM flags_flag_partitioned;
SELECT setval(pg_get_serial_sequence('flags_flag', 'id'), last_value, is_called) FROM flags_flag_partitioned_id_seq;
ALTER TABLE flags_flag ADD CONSTRAINT flags_flag_pkey PRIMARY KEY (id);
ALTER TABLE flags_flag ADD CONSTRAINT flags_unique_per_detector UNIQUE (detector_id, external_id);
CREATE INDEX flags_pending_idx ON flags_flag (id) WHERE case_id IS NULL;
CREATE INDEX flags_account_idx ON flags_flag (account_external_id);
CREATE INDEX {_CASE_INDEX} ON flags_flag (case_id);
ALTER TABLE flags_flag ADD CONSTRAINT {_CASE_FK} FOREIGN KEY (case_id) REFERENCES cases_case (id)
    DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE flags_flagsetaside ADD CONSTRAINT {_SET_ASIDE_FK} FOREIGN KEY (flag_id) REFERENCES flags_flag (id)
    DEFERRABLE INITIALLY DEFERRED;
DROP TABLE flags_flag_partitioned;
DROP FUNCTION flags_flag_partitions_ensure(integer);
DROP FUNCTION flags_flag_partition_create(date);
"""


def _install_flag_triggers(apps, schema_editor):
    """The Flag model's triggers as this migration's state has them (pgtrigger's own install SQL)."""
    for trigger in apps.get_model("flags", "Flag")._meta.triggers:
        schema_editor.execute(trigger.install_sql, params=None)  # interpolated SQL: no placeholders (pgtrigger)


class Migration(migrations.Migration):

    dependencies = [
        ("cases", "0001_initial"),
        ("flags", "0006_flag_evidence_only_purged"),
    ]

    operations = [
        migrations.CreateModel(
            name="FlagKey",
            fields=[
                ("pk", models.CompositePrimaryKey("detector_id", "external_id", blank=True, editable=False,
                                                  primary_key=True, serialize=False)),
                ("detector_id", models.BigIntegerField()),
                ("external_id", models.CharField(max_length=200)),
                ("flag_id", models.BigIntegerField()),
                ("received_at", models.DateTimeField()),
            ],
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveConstraint(model_name="flag", name="flags_unique_per_detector"),
                migrations.AlterField(
                    model_name="flagsetaside",
                    name="flag",
                    field=models.OneToOneField(db_constraint=False, on_delete=models.deletion.PROTECT,
                                               related_name="set_aside", to="flags.flag"),
                ),
            ],
            database_operations=[
                # Backwards, the triggers go onto the plain table once it exists (operations run in reverse).
                migrations.RunPython(migrations.RunPython.noop, _install_flag_triggers),
                migrations.RunSQL(FORWARDS, BACKWARDS),
                migrations.RunPython(_install_flag_triggers, migrations.RunPython.noop),
            ],
        ),
        pgtrigger.migrations.AddTrigger(
            model_name="flag",
            trigger=pgtrigger.compiler.Trigger(name="flags_truncate_keys", sql=pgtrigger.compiler.UpsertTriggerSql(
                func="DELETE FROM flags_flagkey; RETURN NULL;", hash="78af000ace191b71806b1c8df127c12a6346fa92",
                level="STATEMENT", operation="TRUNCATE", pgid="pgtrigger_flags_truncate_keys_d8670",
                table="flags_flag", when="AFTER")),
        ),
    ]
