from celery import shared_task

from . import services


@shared_task(ignore_result=True)
def run_verification(run_id: int) -> str:
    """Verify the audit trail for a run a compliance officer started (services.verification_perform)."""
    return services.verification_perform(run_id=run_id).status
