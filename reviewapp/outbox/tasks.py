from celery import shared_task

from . import services


@shared_task
def deliver(message_id: int) -> str:
    """Try to deliver one outbox message (queued after the enqueueing transaction commits)."""
    message = services.outbox_deliver(message_id=message_id)
    return message.state if message else "skipped"


@shared_task
def reconcile_outbox() -> int:
    """Periodic (beat): re-queue pending messages whose next try is due. What guarantees delivery."""
    return services.outbox_requeue_due()
