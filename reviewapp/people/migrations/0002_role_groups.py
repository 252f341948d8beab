from django.db import migrations


def create_role_groups(apps, schema_editor):
    from reviewapp.people.roles import sync_groups

    sync_groups(apps, strict=False)


def remove_role_groups(apps, schema_editor):
    from reviewapp.people.roles import Role

    apps.get_model("auth", "Group").objects.filter(name__in=Role.values).delete()


class Migration(migrations.Migration):
    """The role groups of DESIGN.md with their model permissions (see reviewapp/people/roles.py)."""

    dependencies = [
        ("people", "0001_initial"),
        ("audit", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_role_groups, remove_role_groups)]
