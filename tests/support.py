"""Helpers for tests that start real processes (Celery workers, concurrent writers) on the test database."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def test_database_url() -> str:
    """A DATABASE_URL that points a child process at the database this test process is using."""
    db = connection.settings_dict
    host = quote(db["HOST"] or "", safe="")
    port = f":{db['PORT']}" if db.get("PORT") else ""
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    return f"postgresql://{db['USER']}{password}@{host}{port}/{db['NAME']}"


def sqla_broker_url(database: str | None = None) -> str:
    """kombu's SQLAlchemy broker URL (psycopg 3) for the database this test process uses, or another on the same
    server. The embedded server listens on a unix socket, which SQLAlchemy takes only as the ``host`` query."""
    from sqlalchemy.engine import URL

    db = connection.settings_dict
    host, port = db["HOST"] or None, db["PORT"] or None
    common = {"drivername": "postgresql+psycopg", "username": db["USER"], "password": db.get("PASSWORD") or None,
              "database": database or db["NAME"]}
    if host and host.startswith("/"):
        url = URL.create(**common, query={"host": host, **({"port": str(port)} if port else {})})
    else:
        url = URL.create(**common, host=host, port=int(port) if port else None)
    return "sqla+" + url.render_as_string(hide_password=False)


def child_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update({
        "DJANGO_SETTINGS_MODULE": "reviewapp.settings.test",
        "DATABASE_URL": test_database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_QUEUE_PREFIX": settings.CELERY_QUEUE_PREFIX,
        "PYTHONPATH": str(ROOT),
    })
    env.update(extra)
    return env


class CeleryWorker:
    """A real `celery worker` process consuming this test session's queues."""

    def __init__(self, env: dict[str, str], log_path: Path, *, concurrency: int = 1, name: str | None = None):
        self.env = env
        self.log_path = log_path
        self.concurrency = concurrency
        self.name = name  # a second worker on the same queues needs a node name of its own
        self.process: subprocess.Popen | None = None
        self._ready = threading.Event()

    def start(self, timeout: float = 90.0) -> CeleryWorker:
        prefix = self.env.get("CELERY_QUEUE_PREFIX", settings.CELERY_QUEUE_PREFIX)
        queues = ",".join(f"{prefix}{kind}" for kind in settings.CELERY_QUEUES)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "reviewapp", "worker", "-Q", queues,
             "--concurrency", str(self.concurrency), "--loglevel", "INFO", "--without-gossip", "--without-mingle",
             "-n", self.name or f"{prefix.strip('-') or os.getpid()}@%h"],
            cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,  # its own process group: the pool children die with it
        )
        self._ready.clear()
        threading.Thread(target=self._pump, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"celery worker did not become ready; log: {self.log_path}")
        return self

    def _pump(self) -> None:
        assert self.process and self.process.stdout
        with open(self.log_path, "a", encoding="utf-8") as log:
            for line in self.process.stdout:
                log.write(line)
                log.flush()
                if " ready." in line:
                    self._ready.set()

    def kill(self) -> None:
        """SIGKILL to the whole worker (main process and its pool children, mid-task): nothing it holds
        is acknowledged, and no orphaned child goes on working or holding database locks."""
        if self.process:
            self._signal_group(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(20)
        if self.process:
            self._signal_group(signal.SIGKILL)  # whatever is left of the group
            self.process.wait(10)

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)


def wait_for(predicate, *, timeout: float = 60.0, interval: float = 0.2, what: str = "condition"):
    """Poll until predicate() is truthy; return its value. Raises AssertionError naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def deliver_outbox(*, kind_prefix: str = "", pks: list[int] | None = None, timeout: float = 60.0) -> None:
    """Deliver, in this process, every outbox message whose kind starts with ``kind_prefix`` (or those of ``pks``).

    A session Celery worker that an earlier test on this xdist node started also consumes the outbox queue once a
    transactional test commits, and tries these messages against its own peer ports (nothing listens there during
    this test), or holds one locked at the moment this process tries it: each round puts what is not delivered
    back to pending and due, and delivers it here, until every such message is delivered."""
    from django.utils import timezone

    from reviewapp.outbox.models import OutboxMessage
    from reviewapp.outbox.services import outbox_deliver

    messages = OutboxMessage.objects.filter(kind__startswith=kind_prefix)
    if pks is not None:
        messages = messages.filter(pk__in=pks)
    deadline = time.monotonic() + timeout
    while True:
        waiting = list(messages.exclude(state="delivered").values_list("pk", flat=True))
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"Outbox messages {waiting} not delivered: "
                                 f"{list(OutboxMessage.objects.filter(pk__in=waiting).values('kind', 'last_error'))}")
        for pk in waiting:
            OutboxMessage.objects.filter(pk=pk).exclude(state="delivered").update(
                state="pending", next_attempt_at=timezone.now())
            outbox_deliver(message_id=pk)
        time.sleep(0.05)

def group_all_flags() -> None:
    """Attach every pending flag to its case now, as the grouping task would.

    In transactional tests a real Celery worker may be grouping the same flags at this moment (ingestion
    enqueues it after commit); rows it holds are skipped by ``flags_group``, so wait until none is
    pending rather than stopping at the first empty batch.
    """
    from flags.grouping import flags_group, pending_count

    deadline = time.monotonic() + 60
    while flags_group(limit=500).flags or pending_count():
        if time.monotonic() > deadline:
            raise AssertionError("flags stayed pending for 60 s")
        time.sleep(0.02)


def sequence_audit() -> int:
    """Give every recorded audit event its seq and hashes now; returns how many were sequenced.

    In production the sequencer runs right after each commit (and every second from beat). Tests under
    the ``db`` fixture never commit, so nothing is sequenced until a test calls this: do so before
    reading ``seq``, ``prev_hash`` or ``hash`` of an event, or verifying the chain.
    """
    from reviewapp.audit.sequencer import sequence_pending

    return sequence_pending(wait=True)


@contextlib.contextmanager
def no_task_grouper():
    """Keep every grouping *task* off the pending flags while a test groups them itself.

    Holds each grouping partition's advisory lock from a connection of its own (waiting for a task that
    holds one to finish): a session Celery worker left in this process by an earlier test then takes no
    partition, so it cannot group this test's flags or hold them while the test looks. Direct
    ``flags_group`` calls take no partition lock and are not affected.
    """
    import psycopg

    from flags import tasks

    db = connection.settings_dict
    other = psycopg.connect(dbname=db["NAME"], user=db["USER"], password=db["PASSWORD"] or None,
                            host=db["HOST"] or None, port=db["PORT"] or None, autocommit=True)
    try:
        other.execute("SET lock_timeout = '60s'")
        for part in range(max(8, settings.FLAGS_GROUP_PARTITIONS)):  # the worker's count, whatever this test set
            other.execute("SELECT pg_advisory_lock(%s, %s)", [tasks._PARTITION_LOCK_CLASS, part])
        yield
    finally:
        other.close()


def run_in_threads(target, count: int, *, timeout: float = 180.0) -> None:
    """``target(i)`` for i in range(count), each in its own thread, all at once; fails naming what any of them
    raised, or if one is still running after ``timeout`` seconds."""
    errors: list[BaseException] = []

    def run(i):
        try:
            target(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads), f"a thread still runs after {timeout:.0f} s"


def flag_received_at(detector, when, external_id: str):
    """A stored flag received at ``when`` (a month with no partition, say), written directly: ingestion stamps
    every flag with the time it arrives, and only the partition under test cares which month that was."""
    from flags.models import Flag, FlagBatch

    batch = FlagBatch.objects.create(detector=detector, source=FlagBatch.Source.FILE)
    return Flag.objects.create(detector=detector, external_id=external_id, detector_version="1",
                               account_external_id=f"acct_{external_id}", signal="s", score=0.5,
                               observed_from=when, observed_to=when, content_hash="0" * 64, batch=batch,
                               received_at=when)

