# Text limits (README "Limits on what people type"): the detector's description becomes varchar(2000).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("flags", "0004_flag_set_aside"),
    ]

    operations = [
        migrations.AlterField(
            model_name="detector",
            name="description",
            field=models.CharField(blank=True, max_length=2000),
        ),
    ]
