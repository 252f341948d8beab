from django.apps import AppConfig


class ComplianceVerificationConfig(AppConfig):
    name = "reviewapp.compliance.verification"
    label = "compliance_verification"
    verbose_name = "Compliance: verification"
