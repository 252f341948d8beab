import logging
import time

from celery import shared_task
from django.conf import settings
from django.core.cache import cache

from .grouping import flags_group, pending_count

log = logging.getLogger(__name__)

# A task groups for at most this long, then hands over to a fresh task (fair to other queued work).
TIME_BUDGET_SECONDS = 30
# At most one grouping task waits in the queue at a time: ingestion enqueues one only when this key is
# absent, and a task deletes it when it starts (so flags ingested while it runs get a task of their own,
# which a second worker can run alongside). The key expires by itself, so a lost task costs seconds at
# most; the reconciler enqueues regardless.
QUEUED_KEY = f"{settings.CELERY_QUEUE_PREFIX}flags.grouping.queued"
_QUEUED_TTL_SECONDS = 5


def grouping_request() -> None:
    """After ingestion commits: make sure a grouping task is queued (one, however many batches arrive)."""
    try:
        first = cache.add(QUEUED_KEY, 1, timeout=_QUEUED_TTL_SECONDS)
    except Exception:  # the cache is only a dedupe: without it, enqueue anyway
        log.warning("grouping dedupe unavailable; enqueueing anyway", exc_info=True)
        first = True
    if first:
        group_pending_flags.delay()


@shared_task
def group_pending_flags(batch_size: int | None = None) -> int:
    """Group pending flags in batches until none is left or the time budget is spent."""
    try:
        cache.delete(QUEUED_KEY)
    except Exception:
        log.warning("grouping dedupe unavailable", exc_info=True)
    batch_size = batch_size or settings.FLAGS_GROUP_BATCH_SIZE
    started, grouped, after = time.monotonic(), 0, 0
    while time.monotonic() - started < TIME_BUDGET_SECONDS:
        run = flags_group(limit=batch_size, after_id=after)
        grouped, after = grouped + run.flags, run.last_id
        if run.taken < batch_size:
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
