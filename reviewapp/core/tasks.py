from celery import shared_task

from . import health


@shared_task
def heartbeat() -> None:
    """Periodic (beat): a worker took work off the queue. /healthz reads when (``health.worker_silence``)."""
    health.heartbeat_answered()
