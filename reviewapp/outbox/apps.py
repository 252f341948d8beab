from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class OutboxConfig(AppConfig):
    name = "reviewapp.outbox"
    label = "outbox"
    verbose_name = "Outbox (external deliveries)"

    def ready(self) -> None:
        # The built-in kinds ("enforcement", "email") register on import; another app adds a kind
        # (e.g. "taxii") in its own ``outbox_handlers`` module, found here, without touching delivery.
        from . import handlers  # noqa: F401

        autodiscover_modules("outbox_handlers")
