"""Events are written without a position; the sequencer gives them ``seq`` and hashes after commit.

The old ``seq`` primary key becomes ``id`` (so existing events keep their numbers as ids), and a new,
nullable ``seq`` takes the same value for every existing event: the chain and its hashes are unchanged.
"""

import pgtrigger.compiler
import pgtrigger.migrations
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0001_initial'),
    ]

    operations = [
        pgtrigger.migrations.RemoveTrigger(
            model_name='auditevent',
            name='audit_append_only',
        ),
        migrations.RenameField(model_name='auditevent', old_name='seq', new_name='id'),
        migrations.AlterField(
            model_name='auditevent',
            name='id',
            field=models.BigAutoField(primary_key=True, serialize=False),
        ),
        migrations.RunSQL(
            "SELECT setval(pg_get_serial_sequence('audit_auditevent', 'id'), "
            "COALESCE((SELECT MAX(id) FROM audit_auditevent), 0) + 1, false)",
            migrations.RunSQL.noop,
        ),
        migrations.AddField(
            model_name='auditevent',
            name='seq',
            field=models.BigIntegerField(help_text='Gapless position in the chain, from 1; empty until sequenced.', null=True, unique=True),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='hash',
            field=models.CharField(max_length=64, null=True, unique=True),
        ),
        migrations.AlterField(
            model_name='auditevent',
            name='prev_hash',
            field=models.CharField(max_length=64, null=True),
        ),
        # Runs while the append-only trigger is off (removed above, added back below).
        migrations.RunSQL("UPDATE audit_auditevent SET seq = id", migrations.RunSQL.noop),
        migrations.AlterModelOptions(
            name='auditevent',
            options={'ordering': ['-id'], 'permissions': [('verify_chain', 'Can verify the audit chain')]},
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(condition=models.Q(('seq__isnull', True)), fields=['created_at', 'id'], name='audit_unsequenced_idx'),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='auditevent',
            trigger=pgtrigger.compiler.Trigger(name='audit_append_only', sql=pgtrigger.compiler.UpsertTriggerSql(func="\nIF TG_OP = 'UPDATE'\n   AND OLD.seq IS NULL AND OLD.prev_hash IS NULL AND OLD.hash IS NULL\n   AND NEW.seq IS NOT NULL AND NEW.prev_hash IS NOT NULL AND NEW.hash IS NOT NULL\n   AND to_jsonb(NEW) - 'seq' - 'prev_hash' - 'hash' = to_jsonb(OLD) - 'seq' - 'prev_hash' - 'hash'\nTHEN\n    RETURN NEW;\nEND IF;\nRAISE EXCEPTION 'pgtrigger: Cannot update or delete rows from % table', TG_TABLE_NAME;\n", hash='5c5b0cd198cd18d8e4e40781bc57627ac8c8545e', operation='UPDATE OR DELETE', pgid='pgtrigger_audit_append_only_f6eda', table='audit_auditevent', when='BEFORE')),
        ),
    ]
