"""A worker whose pool processes are SIGKILLed mid-task keeps working, by itself.

Measured on the old configuration (prefork on kombu's SQLAlchemy transport, the embedded default):
with no event loop, prefork runs billiard's blocking pool, whose children share one inqueue guarded by
a cross-process lock (``SemLock``). An idle child waits for work *holding* that lock; SIGKILL it and
the lock is never released, so every respawned child blocks in ``SimpleQueue.get_payload`` forever
(billiard #104, #457). No task ran again, and nothing said so. The worker now runs a thread pool
(``CELERY_WORKER_POOL``), so there is no pool process to die holding a lock.

The scene, as in ``make run``: a real worker and a real beat; a delivery waiting on a paused receiver
(it listens, the kernel accepts, nobody answers); every pool process of the worker killed; then a new
flag must get its case and the message must be delivered once the receiver resumes, with no restart.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import select
import signal
import subprocess
import sys
import textwrap

import psutil
import pytest
from django.conf import settings
from django.core.cache import cache
from django.urls import reverse

from flags.models import Flag
from reviewapp.core import health
from reviewapp.outbox.models import OutboxMessage
from reviewapp.outbox.receiver import EnforcementReceiver
from tests import support
from tests.conftest import applied
from tests.support import ROOT, CeleryWorker, child_env, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

CLIENT = """
import json, sys
import django
django.setup()
from django.db import transaction
from flags.models import Detector
from flags.services import flags_ingest
from reviewapp.audit.services import SYSTEM
from reviewapp.outbox.services import outbox_enqueue

command, argument = sys.argv[1], json.loads(sys.argv[2])
if command == "enqueue":
    with transaction.atomic():
        outbox_enqueue(kind="enforcement", payload=argument["payload"], idempotency_key=argument["key"])
elif command == "ingest":
    detector = Detector.objects.get(slug=argument["detector"])
    result = flags_ingest(items=[(0, json.dumps(argument["flag"]).encode())], detector=detector, actor=SYSTEM)
    assert result.created == 1, result
"""


def _brokers() -> list[str]:
    # The embedded default (where the stall was measured) always; the session's broker too when it differs.
    return ["sqlalchemy"] + ([] if settings.CELERY_BROKER_URL.startswith("sqla") else ["session"])


def _broker_url(kind: str) -> str:
    if kind == "session":
        return settings.CELERY_BROKER_URL
    return support.sqla_broker_url()


class _Beat:
    """A real `celery beat` with short reconcile intervals, as `make run` starts it."""

    def __init__(self, env: dict[str, str], schedule: str, log_path):
        self.log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 — closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "reviewapp", "beat", "--loglevel", "INFO", "--schedule", schedule],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self.log.close()


@contextlib.contextmanager
def _worker_and_beat(env: dict[str, str], name: str, tmp_path, artifacts_dir):
    worker = CeleryWorker(env, artifacts_dir / f"celery-worker-{name}-{os.getpid()}.log", concurrency=2).start()
    beat = _Beat(env, str(tmp_path / "beat-schedule"), artifacts_dir / f"celery-beat-{name}-{os.getpid()}.log")
    try:
        yield worker
    finally:
        beat.stop()
        worker.stop()
        # Whatever heartbeat this beat left waiting is no other test's business.
        cache.delete_many([health.HEARTBEAT_QUEUED_KEY, health.HEARTBEAT_ANSWERED_KEY])


def _pool_processes(worker: CeleryWorker) -> list[psutil.Process]:
    return psutil.Process(worker.process.pid).children(recursive=True)


@pytest.mark.parametrize("broker", _brokers())
def test_killing_the_pool_mid_delivery_does_not_stall_the_worker(broker, detector, tmp_path, artifacts_dir):
    from tests.conftest import flag_payload

    paused = EnforcementReceiver(("127.0.0.1", 0), secret=settings.ENFORCEMENT_WEBHOOK_SECRET,
                                 log_path=tmp_path / "received.jsonl", out=io.StringIO())  # listening, not serving
    prefix = f"kill{os.getpid()}{broker[:4]}-"
    env = child_env(
        CELERY_BROKER_URL=_broker_url(broker), CELERY_QUEUE_PREFIX=prefix,
        ENFORCEMENT_WEBHOOK_URL=f"http://127.0.0.1:{paused.server_address[1]}/enforcement",
        ENFORCEMENT_WEBHOOK_SECRET=settings.ENFORCEMENT_WEBHOOK_SECRET,
        OUTBOX_RETRY_BASE_SECONDS="1", OUTBOX_MAX_ATTEMPTS="100",
        OUTBOX_RECONCILE_INTERVAL_SECONDS="2", FLAGS_RECONCILE_INTERVAL_SECONDS="2",
    )

    def run_client(command: str, **argument) -> None:
        subprocess.run([sys.executable, "-c", textwrap.dedent(CLIENT), command, json.dumps(argument)],
                       cwd=ROOT, env=env, check=True, timeout=120)

    # The client creates the broker's tables (SQLAlchemy transport) before worker and beat race to.
    run_client("ingest", detector=detector.slug, flag=flag_payload("before", account_id="acct_before"))
    stopping = contextlib.ExitStack()
    stopping.callback(paused.stop)
    with stopping, _worker_and_beat(env, f"pool-kill-{broker}", tmp_path, artifacts_dir) as worker:
        wait_for(lambda: Flag.objects.filter(external_id="f-before", case__isnull=False).exists(), timeout=60,
                 what="the worker to group a first flag")

        run_client("enqueue", key="pool-kill-1",
               payload={"event": "enforcement.apply", "decision_id": 1, "account_id": "acct_1", "action": "suspend"})
        # The delivery is waiting on the paused receiver once its connection sits in the listen backlog.
        readable, _, _ = select.select([paused.socket], [], [], 60)
        assert readable, "the worker never tried to deliver"

        killed = _pool_processes(worker)
        for process in killed:
            process.send_signal(signal.SIGKILL)
        psutil.wait_procs(killed, timeout=10)
        assert worker.process.poll() is None, "only the pool processes were to die, not the worker"

        run_client("ingest", detector=detector.slug, flag=flag_payload("after", account_id="acct_after"))
        wait_for(lambda: Flag.objects.filter(external_id="f-after", case__isnull=False).exists(), timeout=60,
                 what=f"a flag ingested after killing {len(killed)} pool process(es) to get its case")

        paused.serve_in_thread()  # the receiver resumes
        message = OutboxMessage.objects.get(idempotency_key="pool-kill-1")
        wait_for(lambda: OutboxMessage.objects.filter(pk=message.pk, state="delivered").exists(), timeout=90,
                 what="the waiting message to be delivered once the receiver resumed")
        assert [entry["idempotency_key"] for entry in applied(tmp_path / "received.jsonl")] == ["pool-kill-1"]


def test_healthz_names_a_worker_that_takes_no_work(client, settings, tmp_path, artifacts_dir):
    """The worker alive but taking nothing (here: SIGSTOP) — 503 naming it; 200 again once it takes work."""
    settings.HEALTH_WORKER_MAX_SILENCE_SECONDS = 4
    env = child_env(CELERY_QUEUE_PREFIX=f"stall{os.getpid()}-", HEALTH_HEARTBEAT_INTERVAL_SECONDS="1",
                    HEALTH_WORKER_MAX_SILENCE_SECONDS="4")

    def worker_state() -> tuple[int, str]:
        response = client.get(reverse("healthz"))
        return response.status_code, response.json()["worker"]

    with _worker_and_beat(env, "stall", tmp_path, artifacts_dir) as worker:
        wait_for(lambda: cache.get(health.HEARTBEAT_ANSWERED_KEY), timeout=60, what="a first heartbeat answered")
        assert worker_state() == (200, "ok")

        worker.process.send_signal(signal.SIGSTOP)
        try:
            wait_for(lambda: worker_state() == (503, "stalled"), timeout=30, interval=0.5,
                     what="/healthz to name the worker")
        finally:
            worker.process.send_signal(signal.SIGCONT)
        wait_for(lambda: worker_state() == (200, "ok"), timeout=30, interval=0.5,
                 what="/healthz to see the worker take work again")
