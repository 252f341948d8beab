from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "reviewapp.core"
    label = "core"
    verbose_name = "Core pages"
