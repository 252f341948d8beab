from celery import shared_task
from django.conf import settings

from . import services


@shared_task
def audit_checkpoint() -> int:
    """Periodic (Celery beat): verify the chain and sign its head outside the database."""
    event = services.audit_checkpoint(
        checkpoint_file=settings.AUDIT_CHECKPOINT_FILE, key=settings.AUDIT_CHECKPOINT_KEY
    )
    return event.seq


@shared_task(ignore_result=True)
def sequence_audit_events() -> int:
    """Periodic (Celery beat, every second): the sequencer's backstop. Gives committed events that the
    after-commit sequencer missed their place in the chain; returns how many (0 if another sequencer
    holds the chain head, which then takes them)."""
    from .sequencer import sequence_pending

    return sequence_pending()
