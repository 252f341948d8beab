"""The broker restarted while tasks are queued or running: every task's effect happens once (issue 12).

Real processes throughout, on this test's own database: a private broker (tests/reliability/brokers.py — a
Redis without persistence, and a RabbitMQ node with durable queues), two Celery worker processes with node names
of their own (two machines' worth of workers on one queue set), a real ``celery beat`` running the reconcilers
every 2 s, a client process that ingests flags and writes outbox messages as the web does, and a real enforcement
receiver. Neither broker is what makes effects happen once: Redis forgets every queued task when it restarts, and
RabbitMQ redelivers a task whose acknowledgement the restart swallowed. The reconcilers re-queue what is still
to do (``reconcile_pending_flags``, ``reconcile_outbox``), and grouping and delivery make a repeated task a no-op.

a. Tasks queued, nobody consuming, the broker restarted (a clean stop and start): then the workers start.
b. The workers busy grouping a few thousand flags and delivering webhooks: the broker SIGKILLed, down 2 s, started
   again on the same port. The workers are not restarted; they must reconnect by themselves (each answers a
   remote-control ping over the new connection) and finish the work.

Afterwards, each time: every flag in exactly one case, one case per account, every case's aggregates equal to a
recomputation from its flags; every outbox message delivered with exactly one attempt, the receiver applied each
once and was never sent one twice; one ``outbox.delivered`` audit event per message; the audit chain verifies.
Each test prints ``FAULT broker-restart-…`` lines (``pytest -s``): what it killed, when, and the counts it compared.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from kombu import Connection, pidbox

from flags.models import Flag, FlagSetAside
from flags.tasks import QUEUED_KEY
from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.selectors import chain_verify
from reviewapp.cases.models import Case
from reviewapp.outbox.models import OutboxMessage
from reviewapp.outbox.receiver import EnforcementReceiver
from tests.conftest import applied, flag_payload
from tests.flags.test_grouping_properties import aggregates_disagree
from tests.reliability.brokers import PrivateRabbitMQ, PrivateRedis, free_port
from tests.reliability.faults import Beat, FaultLog
from tests.support import ROOT, CeleryWorker, child_env, sequence_audit, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.xdist_group("broker-restart"), pytest.mark.django_db(transaction=True)]

# What the web does: ingest flags (grouping is queued when each batch commits) and write outbox messages (each
# delivery queued when its transaction commits), here against the private broker.
CLIENT = """
import json, sys
import django
django.setup()
from django.db import transaction
from flags.models import Detector
from flags.services import flags_ingest
from reviewapp.audit.services import SYSTEM
from reviewapp.outbox.services import outbox_enqueue

work = json.load(open(sys.argv[1]))
for key, payload in work["messages"]:
    with transaction.atomic():
        outbox_enqueue(kind="enforcement", payload=payload, idempotency_key=key)
detector = Detector.objects.get(slug=work["detector"])
flags, batch = work["flags"], work["batch"]
for start in range(0, len(flags), batch):
    chunk = flags[start:start + batch]
    result = flags_ingest(items=[(i, json.dumps(f).encode()) for i, f in enumerate(chunk)], detector=detector,
                          actor=SYSTEM)
    assert result.created == len(chunk), result
"""


class _SlowReceiver(EnforcementReceiver):
    """The platform taking a while per webhook, so a broker restart can land in the middle of delivery."""

    delay = 0.0

    def apply(self, **kwargs):
        time.sleep(self.delay)
        return super().apply(**kwargs)


@pytest.fixture(scope="module", params=["redis", "rabbitmq"])
def broker(request, tmp_path_factory):
    """One private broker per kind for the module (a RabbitMQ node takes ~6 s to boot); each test has its own
    queue prefix on it."""
    folder = tmp_path_factory.mktemp(f"broker-{request.param}")
    instance = (PrivateRedis if request.param == "redis" else PrivateRabbitMQ)(folder)
    instance.kind = request.param
    with instance:
        yield instance


class _Scene:
    """Everything one test starts, stopped in reverse order by ``close()`` whatever happened."""

    def __init__(self, broker, tmp_path, artifacts_dir, name: str, *, receiver_delay: float):
        self.broker, self.tmp_path, self.name = broker, tmp_path, name
        self.prefix = f"br{os.getpid()}{name}-"
        self.stack = contextlib.ExitStack()
        self.receiver_log = tmp_path / "enforcement-received.jsonl"
        receiver_class = type("Receiver", (_SlowReceiver,), {"delay": receiver_delay})
        self.receiver = receiver_class(("127.0.0.1", free_port()), secret=settings.ENFORCEMENT_WEBHOOK_SECRET,
                                       log_path=self.receiver_log, out=io.StringIO()).serve_in_thread()
        self.stack.callback(self.receiver.stop)
        self.env = child_env(
            CELERY_BROKER_URL=broker.url(), CELERY_QUEUE_PREFIX=self.prefix,
            ENFORCEMENT_WEBHOOK_URL=f"http://127.0.0.1:{self.receiver.server_address[1]}/enforcement",
            ENFORCEMENT_WEBHOOK_SECRET=settings.ENFORCEMENT_WEBHOOK_SECRET,
            AUDIT_CHECKPOINT_FILE=str(tmp_path / "checkpoints.jsonl"),
            FLAGS_GROUP_BATCH_SIZE="50", OUTBOX_RETRY_BASE_SECONDS="1", OUTBOX_MAX_ATTEMPTS="100",
            OUTBOX_RECONCILE_INTERVAL_SECONDS="2", FLAGS_RECONCILE_INTERVAL_SECONDS="2",
        )
        self.artifacts_dir = artifacts_dir
        self.workers: list[CeleryWorker] = []
        self.node_names = [f"{self.prefix}{n}@%h" for n in ("one", "two")]

    def queue_names(self) -> list[str]:
        return [f"{self.prefix}{kind}" for kind in settings.CELERY_QUEUES]

    def run_client(self, work: dict) -> None:
        path = self.tmp_path / "client-work.json"
        path.write_text(json.dumps(work))
        subprocess.run([sys.executable, "-c", textwrap.dedent(CLIENT), str(path)], cwd=ROOT, env=self.env,
                       check=True, timeout=120)

    def start_workers(self) -> float:
        """Two worker nodes (started side by side) and beat; returns the seconds until both were ready."""
        began = time.monotonic()
        self.workers = [CeleryWorker(self.env, self.artifacts_dir / f"celery-worker-{self.name}-{n}-{os.getpid()}.log",
                                     concurrency=2, name=node) for n, node in enumerate(self.node_names)]
        for worker in self.workers:
            self.stack.callback(worker.stop)
        errors: list[BaseException] = []

        def start(worker):
            try:
                worker.start()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=start, args=(w,)) for w in self.workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not errors, errors
        beat = Beat(self.env, self.tmp_path / "beat-schedule",
                    self.artifacts_dir / f"celery-beat-{self.name}-{os.getpid()}.log")
        self.stack.callback(beat.stop)
        return time.monotonic() - began

    def queued(self) -> dict[str, int]:
        """Messages waiting in each of this test's queues on the broker (not counting unacknowledged ones)."""
        counts = {}
        with Connection(self.broker.url(), connect_timeout=5) as conn:
            for name in self.queue_names():
                channel = conn.channel()
                try:
                    counts[name.removeprefix(self.prefix)] = channel.queue_declare(queue=name,
                                                                                   passive=True).message_count
                except Exception:  # never declared (nothing published to it), or gone with a Redis restart
                    counts[name.removeprefix(self.prefix)] = 0
                with contextlib.suppress(Exception):
                    channel.close()
        return counts

    def pings(self) -> set[str]:
        """Which worker nodes answer a remote-control ping over the broker now."""
        # kombu's mailbox on a connection to the private broker, not a Celery app: an app publishes through its
        # producer pool, on its broker_url, and Celery's broker_url prefers the CELERY_BROKER_URL environment
        # variable (the session's broker, in CI) over Celery(broker=...); a new app would also make itself the
        # current one, the app every shared_task of this process then sends through.
        mailbox = pidbox.Mailbox("celery", type="fanout", accept=["json"], serializer="json")
        with Connection(self.broker.url(), connect_timeout=5) as conn:
            answers = mailbox(conn)._broadcast("ping", reply=True, timeout=1.5) or []
        return {name for answer in answers for name in answer}

    def close(self) -> None:
        self.stack.close()
        # Whatever grouping note this test's client left is no other test's business.
        cache.delete(QUEUED_KEY)


@pytest.fixture
def scene_factory(broker, tmp_path, artifacts_dir):
    scenes: list[_Scene] = []

    def make(name: str, *, receiver_delay: float = 0.0) -> _Scene:
        scene = _Scene(broker, tmp_path, artifacts_dir, f"{broker.kind[:2]}{name}", receiver_delay=receiver_delay)
        scenes.append(scene)
        return scene

    yield make
    for scene in scenes:
        scene.close()


def _work(detector, *, flags: int, accounts: int, messages: int, tag: str, batch: int) -> dict:
    return {
        "detector": detector.slug, "batch": batch,
        "flags": [flag_payload(f"{tag}{n}", account_id=f"acct_{tag}{n % accounts}", request_count=n % 97,
                               score=(n % 101) / 100, cluster_id=f"c-{n % 5}") for n in range(flags)],
        "messages": [[f"{tag}-enforce-{n}", {"event": "enforcement.apply", "decision_id": n,
                                             "account_id": f"acct_{tag}{n}", "action": "suspend"}]
                     for n in range(messages)],
    }


def _done(flags: int, messages: int) -> bool:
    return (not Flag.objects.filter(case__isnull=True).exists() and Flag.objects.count() == flags
            and OutboxMessage.objects.filter(state=OutboxMessage.State.DELIVERED).count() == messages)


def _assert_every_effect_once(scene: _Scene, *, flags: int, accounts: int, messages: int, story: str) -> dict:
    """The invariants after the fault; returns the counts compared (also printed)."""
    # Flags: each in exactly one case (a flag has one case_id; one case per account), aggregates exact.
    assert Flag.objects.count() == flags, f"{story}: flags stored {Flag.objects.count()} of {flags}"
    pending = Flag.objects.filter(case__isnull=True).count()
    assert pending == 0, f"{story}: {pending} flags without a case"
    assert not FlagSetAside.objects.exists(), f"{story}: flags set aside"
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(DISTINCT case_id), count(DISTINCT account_external_id), "
                       "count(DISTINCT (account_external_id, case_id)) FROM flags_flag")
        cases_used, accounts_seen, pairs = cursor.fetchone()
    assert (cases_used, accounts_seen, pairs, Case.objects.count()) == (accounts,) * 4, (
        f"{story}: cases with flags {cases_used}, accounts {accounts_seen}, account-case pairs {pairs}, "
        f"cases {Case.objects.count()}; expected {accounts} of each (one case per account)")
    disagree = aggregates_disagree()
    assert disagree == {}, f"{story}: cases whose aggregates differ from their flags: {disagree}"

    # Outbox: each message delivered, tried exactly once; the receiver applied each key once, never saw a repeat.
    rows = list(OutboxMessage.objects.values_list("idempotency_key", "state", "attempts", "delivered_at"))
    states = Counter(state for _, state, _, _ in rows)
    attempts = Counter(n for _, _, n, _ in rows)
    assert len(rows) == messages and states == {"delivered": messages}, f"{story}: outbox states {dict(states)}"
    assert attempts == {1: messages}, f"{story}: outbox attempts per message {dict(attempts)} (1 each expected)"
    assert all(delivered_at for *_, delivered_at in rows), f"{story}: a delivered message without delivered_at"
    received = [entry["idempotency_key"] for entry in applied(scene.receiver_log)]
    repeats = {key: n for key, n in Counter(received).items() if n > 1}
    assert not repeats, f"{story}: the receiver applied these more than once: {repeats}"
    assert sorted(received) == sorted(key for key, *_ in rows), (
        f"{story}: the receiver applied {len(received)} messages, the outbox holds {len(rows)}")
    resent = scene.receiver.out.getvalue().count("already applied")
    assert resent == 0, f"{story}: {resent} webhooks were sent again after being applied"
    delivered_events = AuditEvent.objects.filter(action=AuditAction.OUTBOX_DELIVERED).count()
    assert delivered_events == messages, f"{story}: {delivered_events} outbox.delivered events for {messages} messages"

    sequence_audit()
    report = chain_verify()
    assert report.ok, f"{story}: the audit chain does not verify: {report}"
    return {"flags": flags, "cases": accounts, "messages": messages, "applied": len(received),
            "audit_events_verified": report.count, "unsequenced": report.unsequenced}


def _wait_until_done(scene: _Scene, flags: int, messages: int, *, timeout: float, after: str) -> None:
    try:
        wait_for(lambda: _done(flags, messages), timeout=timeout, interval=0.1,
                 what=f"every flag grouped and every message delivered after {after}")
    except AssertionError as exc:
        try:  # best effort: the broker itself may be what is wrong
            broker_side = f"queued {scene.queued()}, nodes answering a ping {sorted(scene.pings())}"
        except Exception as broker_error:
            broker_side = f"the broker did not answer ({broker_error!r})"
        raise AssertionError(
            f"{exc}: {Flag.objects.filter(case__isnull=True).count()} of {Flag.objects.count()} flags without a "
            f"case, outbox {dict(Counter(OutboxMessage.objects.values_list('state', flat=True)))}, "
            f"{broker_side}") from None


def test_tasks_queued_then_broker_restarted_before_any_worker(broker, scene_factory, detector):
    flags, accounts, messages = 600, 120, 40
    fault = FaultLog(f"broker-restart-queued-{broker.kind}")
    scene = scene_factory("queued")
    scene.run_client(_work(detector, flags=flags, accounts=accounts, messages=messages, tag="q", batch=200))
    before = scene.queued()
    assert before["outbox"] == messages and before["ingest"] >= 1, (
        f"the client's tasks wait in the {broker.kind} queues before the restart: {before}")
    assert Flag.objects.filter(case__isnull=True).count() == flags
    fault.note(f"{flags} flags ingested ({accounts} accounts) and {messages} webhooks written, no worker running; "
               f"queued on {broker.kind}: {before}")

    broker.restart()  # a clean stop and start of the broker, nobody consuming
    after = scene.queued()
    fault.note(f"restarted the private {broker.kind} (clean stop and start, {broker.started_in[-1]:.1f}s to "
               f"ready); queued now: {after}")
    if broker.kind == "redis":  # no RDB, no AOF: every queued task is gone; only the reconcilers can recover
        assert after == {kind: 0 for kind in after}, f"Redis without persistence kept {after}"
    else:  # durable queues, persistent messages: RabbitMQ keeps them; the reconcilers add duplicates on top
        assert after["outbox"] == messages and after["ingest"] == before["ingest"], (
            f"RabbitMQ's durable queues kept {after} of {before}")

    workers_ready_in = scene.start_workers()
    fault.note(f"two worker nodes and beat started ({workers_ready_in:.1f}s to ready)")
    began = time.monotonic()
    _wait_until_done(scene, flags, messages, timeout=60, after=f"the {broker.kind} restart")
    recovered_in = time.monotonic() - began
    counts = _assert_every_effect_once(scene, flags=flags, accounts=accounts, messages=messages,
                                       story=f"{broker.kind} restarted with {before} queued")
    fault.note(f"all done {recovered_in:.1f}s after the workers were ready; compared {counts}")


def test_broker_killed_while_two_workers_group_and_deliver(broker, scene_factory, detector):
    flags, accounts, messages = 3000, 600, 60
    fault = FaultLog(f"broker-restart-busy-{broker.kind}")
    scene = scene_factory("busy", receiver_delay=0.15)
    scene.start_workers()
    pids = [worker.process.pid for worker in scene.workers]
    fault.note(f"two worker nodes (pids {pids}) and beat running on the private {broker.kind}")
    client_errors: list[BaseException] = []

    def client_run():
        try:
            scene.run_client(_work(detector, flags=flags, accounts=accounts, messages=messages, tag="b", batch=500))
        except BaseException as exc:
            client_errors.append(exc)

    client = threading.Thread(target=client_run)
    client.start()
    try:
        wait_for(lambda: Flag.objects.filter(case__isnull=False).exists()
                 and OutboxMessage.objects.filter(state=OutboxMessage.State.DELIVERED).exists(),
                 timeout=60, interval=0.02, what="the workers to be grouping and delivering")
        grouped_at_kill = Flag.objects.filter(case__isnull=False).count()
        delivered_at_kill = OutboxMessage.objects.filter(state=OutboxMessage.State.DELIVERED).count()
        stored_at_kill = Flag.objects.count()  # the client may still be ingesting: its grouping requests then fail
        fault.note(f"SIGKILL to the private {broker.kind} at {grouped_at_kill}/{flags} flags grouped "
                   f"({stored_at_kill} stored) and {delivered_at_kill}/{messages} webhooks delivered")
        broker.restart(kill=True, down_for=2.0)  # SIGKILL, down 2 s, started again on the same port
        fault.note(f"the {broker.kind} started again on its port after 2 s down ({broker.started_in[-1]:.1f}s to "
                   f"ready); the workers are left to reconnect by themselves")
        back_at = time.monotonic()
    finally:
        client.join(120)
    assert not client_errors, f"the client failed: {client_errors}"
    assert 0 < grouped_at_kill < flags and delivered_at_kill < messages, (
        f"the kill must land mid-grouping and mid-delivery: {grouped_at_kill}/{flags} grouped, "
        f"{delivered_at_kill}/{messages} delivered")

    _wait_until_done(scene, flags, messages, timeout=90, after=f"the {broker.kind} kill")
    recovered_in = time.monotonic() - back_at
    # The same worker processes, never restarted by the test, and each consumes over a new connection.
    assert [worker.process.pid for worker in scene.workers] == pids
    assert all(worker.process.poll() is None for worker in scene.workers), "a worker died with the broker"
    nodes = {name.replace("%h", os.uname().nodename) for name in scene.node_names}
    answered = wait_for(lambda: (scene.pings() >= nodes) and scene.pings(), timeout=30, interval=0.5,
                        what=f"both worker nodes {sorted(nodes)} to answer a ping after the {broker.kind} restart "
                             f"(a node that reconnected but whose event loop is stuck answers none)")
    counts = _assert_every_effect_once(scene, flags=flags, accounts=accounts, messages=messages,
                                       story=f"{broker.kind} killed at {grouped_at_kill} grouped, "
                                             f"{delivered_at_kill} delivered")
    fault.note(f"all done {recovered_in:.1f}s after the {broker.kind} was back, by the same workers (pids {pids}); "
               f"{sorted(answered)} answer pings; compared {counts}")
