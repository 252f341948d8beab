"""cases_case at fillfactor 60: room on each page for grouping's case updates to be HOT (issue 8).

Grouping writes every case its flags touch once per batch (the aggregates, priority, SLA). Once a case has a few
flags, its indexed columns (queue, priority, state…) rarely change with the next ones, and PostgreSQL can then
write the new row version on the same page without a new entry in each of the table's nine indexes (a heap-only
tuple), if the page has room. At the default fillfactor (100) it never has. Measured with
``python -m bench.grouping --flags 20000`` (flags for cases that exist, three alternated runs each): PostgreSQL
90-96 -> 68-73 ms of CPU per 1,000 flags. The price is a table about 1.6 times as large. Rows written before
this migration keep their pages until they are rewritten (``VACUUM FULL cases_case``), new ones get the room.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("cases", "0005_cases_refuse")]

    operations = [migrations.RunSQL("ALTER TABLE cases_case SET (fillfactor = 60)",
                                    "ALTER TABLE cases_case RESET (fillfactor)")]
