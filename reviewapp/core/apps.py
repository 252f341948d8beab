from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "reviewapp.core"
    label = "core"
    verbose_name = "Core pages"

    def ready(self):
        from .database_unavailable import connect_signals

        connect_signals()  # an unreachable database in a middleware is answered 503 too
