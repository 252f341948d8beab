"""cases_refuse(message, value): raise a data error from inside a statement (grouping's one-statement case
update refuses a value the application cannot read back, issue 8; services.cases_add_flags)."""

from django.db import migrations

# SQLSTATE 22008 (datetime_field_overflow), class 22 "data exception": psycopg and Django raise DataError, which
# grouping treats as "this data cannot be held" and isolates the flag that causes it.
_CREATE = """
CREATE FUNCTION cases_refuse(message text, value anyelement) RETURNS anyelement
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog AS $$
BEGIN
    RAISE EXCEPTION USING MESSAGE = message, ERRCODE = '22008';
END
$$
"""


class Migration(migrations.Migration):
    dependencies = [("cases", "0004_text_limits")]

    operations = [migrations.RunSQL(_CREATE, "DROP FUNCTION cases_refuse(text, anyelement)")]
