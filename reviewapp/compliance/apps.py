from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "reviewapp.compliance"
    label = "compliance"
    verbose_name = "Compliance console"
