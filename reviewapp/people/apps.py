from django.apps import AppConfig
from django.db.models.signals import post_migrate


class PeopleConfig(AppConfig):
    name = "reviewapp.people"
    label = "people"
    verbose_name = "People and roles"

    def ready(self) -> None:
        from . import openapi, receivers, roles  # noqa: F401 — openapi: the token scheme, for drf-spectacular

        receivers.connect()
        # Later apps add permissions to roles.ROLE_PERMISSIONS; keep the groups in step after each migrate.
        post_migrate.connect(roles.sync_after_migrate, sender=self, dispatch_uid="people.sync_roles")
