import logging
import time

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from reviewapp.audit.sequencer import sequence_pending

from .grouping import Partition, flags_group, pending_count, pending_in

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
    """After ingestion commits: make sure a grouping task is queued (one, however many batches arrive).

    Never raises: it runs after the flags' transaction committed, so a broker that cannot take the task must not
    turn stored flags into an error for the detector (it would resend them; the reconciler groups them anyway).
    """
    try:
        first = cache.add(QUEUED_KEY, 1, timeout=_QUEUED_TTL_SECONDS)
    except Exception:  # the cache is only a dedupe: without it, enqueue anyway
        log.warning("grouping dedupe unavailable; enqueueing anyway", exc_info=True)
        first = True
    if not first:
        return
    try:
        group_pending_flags.delay()
    except Exception:  # the broker is down: the flags are committed, and reconcile_pending_flags queues them
        log.warning("grouping not queued (broker unavailable); the pending-flags reconciler will queue it",
                    exc_info=True)


# Session-level advisory locks, one per partition of the pending flags (grouping.Partition): the grouper
# that holds one is the only one grouping that partition's accounts. Released when the task is done with
# it, or by PostgreSQL when the worker's connection dies (a killed worker frees its partition at once).
_PARTITION_LOCK_CLASS = int.from_bytes(b"grp", "big")


def _partition_take(part: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_PARTITION_LOCK_CLASS, part])
        return cursor.fetchone()[0]


def _partition_release(part: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_PARTITION_LOCK_CLASS, part])


@shared_task
def group_pending_flags(batch_size: int | None = None) -> int:
    """Group pending flags in batches until none is left or the time budget is spent.

    The pending flags are split by account into ``FLAGS_GROUP_PARTITIONS`` partitions, and a task groups
    one partition at a time, holding its lock: two tasks running at once (two pool threads, or two
    workers) take different partitions, so they never share an account and never wait for each other's
    transaction at the account insert, the case insert or the case row locks (issue 8: they did, which
    made two groupers run one after the other). A task that takes a partition asks for another task, so
    that a free partition gets a grouper of its own; a partition already held is left to its holder, which
    looks again after releasing it (a flag that arrived just then is not left behind).

    The batches' audit events are sequenced once at the end (and by beat every second meanwhile), not after
    each batch's commit: the sequencer takes many batches' events in one short transaction, and the
    grouping thread goes straight on to its next batch.
    """
    try:
        cache.delete(QUEUED_KEY)
    except Exception:
        log.warning("grouping dedupe unavailable", exc_info=True)
    batch_size = batch_size or settings.FLAGS_GROUP_BATCH_SIZE
    parts = max(1, settings.FLAGS_GROUP_PARTITIONS)
    deadline = time.monotonic() + TIME_BUDGET_SECONDS
    grouped = 0
    try:
        for part in range(parts):
            partition = Partition(part, parts)
            while _partition_take(part):
                try:
                    # Another grouper only for a partition with work: asking for one unconditionally made every
                    # task, finding nothing, queue the next — an endless chain of empty tasks on an idle stack.
                    if parts > 1 and pending_in(partition):
                        grouping_request()
                    done, finished = _group_partition(partition, batch_size, deadline)
                    grouped += done
                finally:
                    _partition_release(part)
                if not finished:  # the time budget is spent: a fresh task goes on
                    group_pending_flags.delay(batch_size)
                    return grouped
                if not done or not pending_in(partition):
                    break  # (nothing done: what is still pending is held by another transaction, which ends it)
        return grouped
    finally:
        if grouped:
            sequence_pending()


def _group_partition(partition: Partition, batch_size: int, deadline: float) -> tuple[int, bool]:
    """Group the partition's pending flags until none is left (True) or the deadline passes (False)."""
    grouped, after = 0, 0
    while time.monotonic() < deadline:
        run = flags_group(limit=batch_size, after_id=after, sequence=False, partition=partition)
        grouped, after = grouped + run.flags, run.last_id
        if run.taken < batch_size:
            return grouped, True
    return grouped, False


@shared_task
def reconcile_pending_flags() -> int:
    """Periodic (beat): if any flag still has no case (a lost message, a killed worker), group it now."""
    pending = pending_count()
    if pending:
        group_pending_flags.delay()
    return pending


@shared_task
def ensure_flag_partitions() -> list[str]:
    """Periodic (beat, daily, maintenance queue): this month's and the next months' flags partitions exist
    (flags/partitions.py); idempotent, audited when it creates one."""
    from .partitions import flags_partitions_ensure

    created = flags_partitions_ensure()
    if created:
        log.info("flags partitions created: %s", ", ".join(created))
    return created
