from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class OutboxConfig(AppConfig):
    name = "reviewapp.outbox"
    label = "outbox"
    verbose_name = "Outbox (external deliveries)"

    def ready(self) -> None:
        # The built-in kinds ("enforcement", "email") register on import; another app adds a kind
        # (e.g. "taxii") in its own ``outbox_handlers`` module, found here, without touching delivery.
        from reviewapp.audit.events import checkpoint_signed

        from . import handlers  # noqa: F401
        from .reactions import witness_copy

        checkpoint_signed.connect(witness_copy, dispatch_uid="outbox.witness_copy")

        autodiscover_modules("outbox_handlers")
