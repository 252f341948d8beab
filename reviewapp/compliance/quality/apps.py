from django.apps import AppConfig


class ComplianceQualityConfig(AppConfig):
    name = "reviewapp.compliance.quality"
    label = "compliance_quality"
    verbose_name = "Compliance: quality"
