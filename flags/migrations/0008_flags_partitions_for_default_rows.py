"""Partition maintenance also gives a month its partition when its flags wait in DEFAULT, and counts them for the app.

flags 0007's ``flags_flag_partitions_ensure`` made this month and the next ones only: had the task not run for a
while (beat down across a month's start), that month's flags stayed in the DEFAULT partition for good, since a
later run starts from its own month. Now every month that has rows in DEFAULT gets its partition too (the rows
move into it: ``flags_flag_partition_create``). And ``flags_flag_default_count()`` tells the application role,
which may not read a partition (reviewapp/core/db_roles.py), how many flags wait there (``manage.py
flags_partitions``).
"""

from django.db import migrations

_ENSURE = """
CREATE OR REPLACE FUNCTION flags_flag_partitions_ensure(months_ahead integer) RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER AS $fn$
DECLARE
    this_month date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
    month date;
    created text;
BEGIN
    IF months_ahead < 0 OR months_ahead > 24 THEN
        RAISE EXCEPTION 'months_ahead must be between 0 and 24, not %', months_ahead;
    END IF;
    FOR month IN
        SELECT DISTINCT date_trunc('month', received_at AT TIME ZONE 'UTC')::date FROM flags_flag_default
        UNION SELECT (this_month + make_interval(months => i))::date FROM generate_series(0, months_ahead) AS i
        ORDER BY 1
    LOOP
        created := flags_flag_partition_create(month);
        IF created IS NOT NULL THEN
            RETURN NEXT created;
        END IF;
    END LOOP;
END
$fn$;
"""

# CREATE OR REPLACE keeps a function's owner and grants but resets the rest: pin its search_path again.
_PIN = """
DO $do$ BEGIN
    EXECUTE format('ALTER FUNCTION flags_flag_partitions_ensure(integer) SET search_path = %I, pg_temp',
                   current_schema());
END $do$;
"""

_COUNT = """
CREATE FUNCTION flags_flag_default_count() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER AS $fn$ SELECT count(*) FROM flags_flag_default $fn$;
DO $do$ BEGIN
    EXECUTE format('ALTER FUNCTION flags_flag_default_count() SET search_path = %I, pg_temp', current_schema());
END $do$;
REVOKE EXECUTE ON FUNCTION flags_flag_default_count() FROM PUBLIC;
"""

_ENSURE_0007 = """
CREATE OR REPLACE FUNCTION flags_flag_partitions_ensure(months_ahead integer) RETURNS SETOF text
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
"""


class Migration(migrations.Migration):

    dependencies = [
        ("flags", "0007_flags_partitioned_by_month"),
    ]

    operations = [
        migrations.RunSQL(_ENSURE + _PIN, _ENSURE_0007 + _PIN),
        migrations.RunSQL(_COUNT, "DROP FUNCTION flags_flag_default_count()"),
    ]
