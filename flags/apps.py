from django.apps import AppConfig


class FlagsConfig(AppConfig):
    name = "flags"
    verbose_name = "Detector flags"

    def ready(self) -> None:
        from . import openapi  # noqa: F401 — registers the bearer-token scheme with drf-spectacular
