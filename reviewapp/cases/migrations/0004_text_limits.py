# Text limits (README "Limits on what people type"): each free-text column becomes varchar(N), so the
# database refuses a longer text too. A row already over its limit makes this migration fail, naming it.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("cases", "0003_holderlink"),
    ]

    operations = [
        migrations.AlterField(
            model_name="decision",
            name="rationale",
            field=models.CharField(help_text="Internal: why, for reviewers, approvers and auditors.", max_length=10000),
        ),
        migrations.AlterField(
            model_name="decision",
            name="facts_for_holder",
            field=models.CharField(blank=True, help_text="What the account holder is told was relied on.",
                                   max_length=5000, verbose_name="facts for the account holder"),
        ),
        migrations.AlterField(
            model_name="decision",
            name="sent_back_reason",
            field=models.CharField(blank=True, max_length=5000, verbose_name="reason for sending back"),
        ),
        migrations.AlterField(
            model_name="casenote",
            name="text",
            field=models.CharField(max_length=10000, verbose_name="note"),
        ),
    ]
