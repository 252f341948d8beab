from celery import shared_task

from . import checkpoints


@shared_task
def audit_checkpoint() -> int | None:
    """Periodic (Celery beat, every AUDIT_CHECKPOINT_INTERVAL_SECONDS): verify the chain and sign its head
    outside the database if it grew. Returns the seq checkpointed, or None when nothing changed."""
    event = checkpoints.audit_checkpoint(**checkpoints.configured())
    return event.data.get("head_seq") if event is not None else None


@shared_task(ignore_result=True)
def sequence_audit_events() -> int:
    """Periodic (Celery beat, every second): the sequencer's backstop. Gives committed events that the
    after-commit sequencer missed their place in the chain; returns how many (0 if another sequencer
    holds the chain head, which then takes them)."""
    from .sequencer import sequence_pending

    return sequence_pending()
