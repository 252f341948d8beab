from celery import shared_task

from .services.claims import case_claims_lapse
from .services.decisions import decisions_lift_expired


@shared_task
def lapse_claims() -> int:
    """Periodic (beat, every minute): cases whose claim lapsed go back to their queue."""
    return case_claims_lapse()


@shared_task
def lift_expired_decisions() -> int:
    """Periodic (beat, every minute): temporary actions whose time is up are lifted through the outbox."""
    return decisions_lift_expired()
