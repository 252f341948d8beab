import time

from celery import shared_task
from django.conf import settings

from .grouping import flags_group, pending_count

# A task groups for at most this long, then hands over to a fresh task (fair to other queued work).
TIME_BUDGET_SECONDS = 30


@shared_task
def group_pending_flags(batch_size: int | None = None) -> int:
    """Group pending flags in batches until none is left or the time budget is spent."""
    batch_size = batch_size or settings.FLAGS_GROUP_BATCH_SIZE
    started, grouped = time.monotonic(), 0
    while time.monotonic() - started < TIME_BUDGET_SECONDS:
        run = flags_group(limit=batch_size)
        grouped += run.flags
        if run.flags < batch_size:
            return grouped
    group_pending_flags.delay(batch_size)
    return grouped


@shared_task
def reconcile_pending_flags() -> int:
    """Periodic (beat): if any flag still has no case (a lost message, a killed worker), group it now."""
    pending = pending_count()
    if pending:
        group_pending_flags.delay()
    return pending
