# Text limits (README "Limits on what people type"): each free-text column becomes varchar(N), so the
# database refuses a longer text too. A row already over its limit makes this migration fail, naming it.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("appeals", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="appeal",
            name="grounds",
            field=models.CharField(max_length=20000),
        ),
        migrations.AlterField(
            model_name="appeal",
            name="outcome_reason",
            field=models.CharField(blank=True, help_text="The reasoned outcome, written for the holder.",
                                   max_length=10000, verbose_name="reasons for the holder"),
        ),
        migrations.AlterField(
            model_name="appealmessage",
            name="text",
            field=models.CharField(max_length=20000, verbose_name="message"),
        ),
    ]
