"""Three indexes of audit_auditevent no query needs, each written twice per event (docs/audit-indexes.md).

- ``hash``: its unique constraint and the ``varchar_pattern_ops`` twin Django adds for a unique CharField. No query
  looks an event up by its hash; the chain's integrity is ``seq`` (unique) and ``verify_audit`` recomputing each hash.
- ``action``: the ``varchar_pattern_ops`` twin of its index (nothing filters action with LIKE). The plain B-tree
  stays, renamed to ``audit_action_idx`` as the model now declares it: renamed in place, not rebuilt.
"""

from django.db import migrations, models

_ACTION_INDEX = "audit_auditevent_action_2131bb77"  # the name db_index=True gave it


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0002_sequenced_chain'),
    ]

    operations = [
        migrations.AlterField(
            model_name='auditevent',
            name='hash',
            field=models.CharField(max_length=64, null=True),
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    [f"DROP INDEX {_ACTION_INDEX}_like", f"ALTER INDEX {_ACTION_INDEX} RENAME TO audit_action_idx"],
                    [f"ALTER INDEX audit_action_idx RENAME TO {_ACTION_INDEX}",
                     f"CREATE INDEX {_ACTION_INDEX}_like ON audit_auditevent (action varchar_pattern_ops)"],
                ),
            ],
            state_operations=[
                migrations.AlterField(
                    model_name='auditevent',
                    name='action',
                    field=models.CharField(max_length=64),
                ),
                migrations.AddIndex(
                    model_name='auditevent',
                    index=models.Index(fields=['action'], name='audit_action_idx'),
                ),
            ],
        ),
    ]
