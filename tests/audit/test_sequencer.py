"""Writers do not queue behind the audit chain: the sequencer appends after commit (issue 8, section 2).

These tests commit for real (``transaction=True``), from threads with their own database connections,
so the after-commit sequencer runs as it does in production.
"""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction

from reviewapp.audit import tasks
from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.selectors import chain_verify, unsequenced_events
from reviewapp.audit.sequencer import _CHAIN_LOCK_KEY, sequence_pending
from reviewapp.audit.services import SYSTEM, Actor, record
from reviewapp.celery import app as celery_app
from tests.support import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
WAIT = 20  # seconds; a bound for a hung thread, never the thing measured


def _in_thread(target, *args) -> threading.Thread:
    def run():
        try:
            target(*args)
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _chain() -> list[tuple[int, str]]:
    return list(AuditEvent.objects.filter(seq__isnull=False).order_by("seq").values_list("seq", "actor_id"))


def test_an_open_transaction_with_an_event_does_not_hold_up_another_writer():
    finished: list[str] = []
    slow_has_recorded, fast_done = threading.Event(), threading.Event()

    def slow_writer():  # e.g. a grouping transaction: records early, commits late
        with transaction.atomic():
            record(actor=Actor(type="system", id="slow"), action=AuditAction.STAFF_CREATED)
            slow_has_recorded.set()
            fast_done.wait(WAIT)  # with a chain lock held to commit, the fast writer never gets here
            finished.append("slow")

    def fast_writer():  # e.g. a claim or a decision
        slow_has_recorded.wait(WAIT)
        with transaction.atomic():
            record(actor=Actor(type="system", id="fast"), action=AuditAction.STAFF_CREATED)
        finished.append("fast")
        fast_done.set()

    threads = [_in_thread(slow_writer), _in_thread(fast_writer)]
    for thread in threads:
        thread.join(WAIT * 2)
    assert finished == ["fast", "slow"]  # the second writer committed while the first was still open
    sequence_pending(wait=True)
    assert sorted(actor for _, actor in _chain()) == ["fast", "slow"]
    assert chain_verify().ok


def _without_after_commit_sequencing(monkeypatch):
    """As if the writing process died between its commit and its after-commit sequencer run."""
    from reviewapp.audit import sequencer

    monkeypatch.setattr(sequencer, "_sequence_after_commit", lambda: None)
    return monkeypatch.undo


def test_the_sequencer_takes_an_event_committed_while_it_was_running(monkeypatch):
    """The race: the running sequencer read its batch before our commit, and our try-lock found it busy."""
    from reviewapp.audit import sequencer

    record(actor=Actor(type="system", id="first"), action=AuditAction.STAFF_CREATED)  # sequenced on commit
    restore = _without_after_commit_sequencing(monkeypatch)
    record(actor=Actor(type="system", id="in-batch"), action=AuditAction.STAFF_CREATED)
    restore()
    assert _chain() == [(1, "first")]

    in_batch, go_on = threading.Event(), threading.Event()
    real_link_hash = sequencer.link_hash

    def pausing_link_hash(**kwargs):  # the running sequencer pauses with its batch read and the lock held
        if threading.current_thread().name == "running-sequencer" and not in_batch.is_set():
            in_batch.set()
            go_on.wait(WAIT)
        return real_link_hash(**kwargs)

    monkeypatch.setattr(sequencer, "link_hash", pausing_link_hash)
    running = threading.Thread(target=lambda: (sequence_pending(), connection.close()), name="running-sequencer")
    running.start()
    assert in_batch.wait(WAIT)
    record(actor=Actor(type="system", id="late"), action=AuditAction.STAFF_CREATED)  # commits mid-run
    assert AuditEvent.objects.get(actor_id="late").seq is None  # our after-commit try-lock found it busy
    go_on.set()
    running.join(WAIT)
    # The running sequencer loops until a batch comes back empty, so it took the late event too.
    assert _chain() == [(1, "first"), (2, "in-batch"), (3, "late")]
    assert chain_verify().ok


def test_a_sequencer_finishing_an_empty_batch_still_takes_an_event_whose_try_lock_it_refused(monkeypatch):
    """The tighter race: the holder already found nothing; we commit and our try-lock finds it still busy."""
    from reviewapp.audit import sequencer

    found_nothing, go_on = threading.Event(), threading.Event()
    real_links = sequencer._links

    def pausing_links(pending, **kwargs):
        if threading.current_thread().name == "running-sequencer" and not pending and not found_nothing.is_set():
            found_nothing.set()  # its read is done and empty; it still holds the lock
            go_on.wait(WAIT)
        return real_links(pending, **kwargs)

    monkeypatch.setattr(sequencer, "_links", pausing_links)
    running = threading.Thread(target=lambda: (sequence_pending(), connection.close()), name="running-sequencer")
    running.start()
    assert found_nothing.wait(WAIT)
    record(actor=Actor(type="system", id="late"), action=AuditAction.STAFF_CREATED)
    assert AuditEvent.objects.get(actor_id="late").seq is None  # our try-lock found the holder busy
    go_on.set()
    running.join(WAIT)
    # After releasing the lock the holder looked again, saw our committed event, and took it.
    assert _chain() == [(1, "late")]


def test_the_beat_backstop_sequences_what_no_after_commit_run_took():
    with connection.cursor() as cur:
        # Something that will not look again holds the chain head (a sequencer whose process dies) …
        cur.execute("SELECT pg_advisory_lock(%s::bigint)", [_CHAIN_LOCK_KEY])
    holder_done = threading.Event()

    def writer():
        record(actor=Actor(type="system", id="missed"), action=AuditAction.STAFF_CREATED)
        holder_done.set()

    _in_thread(writer).join(WAIT)
    assert holder_done.is_set()  # … so the writer's after-commit run gave up at once instead of waiting
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_unlock(%s::bigint)", [_CHAIN_LOCK_KEY])
    assert AuditEvent.objects.get(actor_id="missed").seq is None
    assert chain_verify().unsequenced == 1

    assert tasks.sequence_audit_events() == 1  # what beat runs every second
    assert _chain() == [(1, "missed")]
    schedule = {entry["task"]: entry for entry in celery_app.conf.beat_schedule.values()}
    assert schedule["reviewapp.audit.tasks.sequence_audit_events"]["schedule"] <= 1.0


def test_an_event_waiting_too_long_is_reported(monkeypatch):
    restore = _without_after_commit_sequencing(monkeypatch)
    record(actor=SYSTEM, action=AuditAction.STAFF_CREATED)
    restore()
    assert unsequenced_events(older_than=timedelta(minutes=1)).count == 0  # it has only just been written
    stale = unsequenced_events(older_than=timedelta(0))
    assert stale.count == 1 and stale.oldest_at is not None
    assert sequence_pending() == 1
    assert unsequenced_events(older_than=timedelta(0)).count == 0


def test_a_rolled_back_writer_leaves_no_event_and_no_gap():
    started, other_committed = threading.Event(), threading.Event()
    committed_while_doomed_was_open: list[bool] = []

    def doomed():
        with pytest.raises(RuntimeError), transaction.atomic():
            record(actor=Actor(type="system", id="doomed"), action=AuditAction.STAFF_CREATED)
            started.set()
            committed_while_doomed_was_open.append(other_committed.wait(WAIT))
            raise RuntimeError("the change failed")

    def other():
        started.wait(WAIT)
        record(actor=Actor(type="system", id="kept"), action=AuditAction.STAFF_CREATED)
        other_committed.set()

    for thread in [_in_thread(doomed), _in_thread(other)]:
        thread.join(WAIT * 2)
    assert committed_while_doomed_was_open == [True]
    record(actor=Actor(type="system", id="after"), action=AuditAction.STAFF_CREATED)
    sequence_pending(wait=True)
    assert _chain() == [(1, "kept"), (2, "after")]
    assert not AuditEvent.objects.filter(actor_id="doomed").exists()
    assert chain_verify().ok


@pytest.mark.worker
@pytest.mark.xdist_group("worker")
def test_the_backstop_task_runs_in_a_real_worker(celery_worker, monkeypatch):
    restore = _without_after_commit_sequencing(monkeypatch)
    record(actor=Actor(type="system", id="left-behind"), action=AuditAction.STAFF_CREATED)
    restore()
    tasks.sequence_audit_events.delay()  # as beat queues it, on the maintenance queue
    wait_for(lambda: AuditEvent.objects.filter(actor_id="left-behind", seq__isnull=False).exists(),
             what="the worker to sequence the event")
    assert chain_verify().ok
