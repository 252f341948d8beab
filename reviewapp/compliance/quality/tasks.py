"""Beat's periodic calibration check (settings COMPLIANCE_CALIBRATION_CHECK_SECONDS; reviewapp/celery.py)."""

from celery import shared_task

from .services import calibration_alerts_check


@shared_task(name="reviewapp.compliance.quality.tasks.check_calibration_alerts")
def check_calibration_alerts() -> dict[str, int]:
    return calibration_alerts_check()
