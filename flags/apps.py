from django.apps import AppConfig


class FlagsConfig(AppConfig):
    name = "flags"
    verbose_name = "Detector flags"
    # flags.openapi (drf-spectacular's bearer-token scheme) is imported by flags.api, which the URLconf loads
    # before any schema is generated; importing it here cost every process (ingest_flags, Celery) 0.1-0.2 s.
