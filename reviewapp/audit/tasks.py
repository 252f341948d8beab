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
