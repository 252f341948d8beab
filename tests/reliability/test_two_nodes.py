"""More than one machine (issue 12): two Celery worker nodes and two web servers on one PostgreSQL, on a private
Redis and on a private RabbitMQ (tests/reliability/brokers.py; never the machine's own brokers).

Everything goes over real HTTP to two gunicorn instances on separate ports, as two machines behind a load
balancer; the grouping, the deliveries and the rest are done by two worker nodes of their own names, each
consuming every queue. The scene:

1. four detector clients post overlapping batches of flags for the same few accounts to both webs at once;
2. six reviewers (staff API tokens) claim-next through one web and decide through the other, all at once, until
   the queues are empty;
3. every decision's enforcement webhook goes through the outbox to a real receiver.

Then: every flag stored once and in exactly one case, one case per account, every case's aggregates equal a
recomputation from its flags (tests/flags/test_grouping_properties.py's ``aggregates_disagree``); no case
claimed by two reviewers and every case decided once; each webhook applied exactly once; the audit chain
verifies once sequenced; and both worker nodes did work and both webs answered requests (their own logs).
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache

from flags.models import Flag, FlagSetAside
from flags.tasks import QUEUED_KEY
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.selectors import chain_verify
from reviewapp.cases.models import Case, Decision
from reviewapp.cases.vocabulary import Queue, Signal
from reviewapp.outbox.models import OutboxMessage
from reviewapp.people.roles import Role
from reviewapp.people.services import issue_api_token
from tests.conftest import applied, flag_payload
from tests.flags.test_grouping_properties import aggregates_disagree
from tests.reliability.brokers import PrivateRabbitMQ, PrivateRedis, free_port
from tests.support import ROOT, CeleryWorker, child_env, run_in_threads, sequence_audit, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.xdist_group("two-nodes"), pytest.mark.django_db(transaction=True)]

ACCOUNTS, CLIENTS, BATCHES, PER_BATCH, REVIEWERS = 16, 4, 3, 240, 6
WARN = {"clauses": ["T-1"], "action": "warn", "rationale": "Templated extraction prompts at scale (two-node test).",
        "facts_for_holder": "Your account sent large volumes of templated prompts designed to extract outputs."}
_TASK_DONE = re.compile(r"Task (\S+)\[[^\]]*\] succeeded")
_ACCESS = re.compile(r'"(?:GET|POST) \S+ HTTP/[\d.]+" \d{3} ')


class Gunicorn:
    """One web server instance: its own gunicorn master (one gthread process) on its own port."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.port, self.log_path, self.env = free_port(), log_path, env
        self.process: subprocess.Popen | None = None

    def start(self) -> Gunicorn:
        with open(self.log_path, "a", encoding="utf-8") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "reviewapp.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
                 "--workers", "1", "--worker-class", "gthread", "--threads", "4", "--access-logfile", "-",
                 "--graceful-timeout", "5"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answers(self) -> bool:
        assert self.process.poll() is None, f"gunicorn exited; log: {self.log_path}"
        try:
            with urllib.request.urlopen(f"{self.url()}/healthz", timeout=5):
                return True
        except urllib.error.HTTPError:
            return True  # it answers (503 names a part still starting)
        except OSError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(15)
        if self.process:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, 9)
            self.process.wait(10)

    def served(self) -> int:
        return sum(1 for line in self.log_path.read_text(errors="replace").splitlines() if _ACCESS.search(line))


def _tasks_done(log_path: Path) -> collections.Counter:
    text = log_path.read_text(errors="replace") if log_path.exists() else ""
    return collections.Counter(match[1].rsplit(".", 1)[-1] for match in _TASK_DONE.finditer(text))


@pytest.fixture(params=["redis", "rabbitmq"])
def two_nodes(request, transactional_db, tmp_path, artifacts_dir, start_receiver):
    """A private broker, a receiver, two worker nodes and two web servers on the test database."""
    kind = request.param
    broker = (PrivateRedis if kind == "redis" else PrivateRabbitMQ)(tmp_path / kind).start()
    receiver = start_receiver(log_path=tmp_path / "enforcement-received.jsonl")
    cache.delete(QUEUED_KEY)  # the cache table outlives the flush: a note from an earlier test must not stop grouping
    env = child_env(
        CELERY_BROKER_URL=broker.url(), CELERY_QUEUE_PREFIX=f"two{os.getpid()}{kind}-",
        FLAGS_GROUP_BATCH_SIZE="100", AUDIT_CHECKPOINT_FILE=str(tmp_path / "checkpoints.jsonl"),
        ENFORCEMENT_WEBHOOK_URL=f"http://127.0.0.1:{receiver.server_address[1]}/enforcement",
        ENFORCEMENT_WEBHOOK_SECRET=settings.ENFORCEMENT_WEBHOOK_SECRET,
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend", OUTBOX_RETRY_BASE_SECONDS="1",
        FORUM_TAXII_API_ROOT=f"http://127.0.0.1:{free_port()}/forum/", DEBUG="0")
    stamp = f"{os.getpid()}-{kind}"
    webs = [Gunicorn(env, artifacts_dir / f"two-nodes-web{n}-{stamp}.log").start() for n in (1, 2)]
    workers = [CeleryWorker(env, artifacts_dir / f"two-nodes-worker{n}-{stamp}.log", concurrency=2,
                            name=f"two{n}-{stamp}@%h") for n in (1, 2)]
    failed: list[BaseException] = []

    def start(worker):
        try:
            worker.start()
        except BaseException as exc:
            failed.append(exc)

    starters = [threading.Thread(target=start, args=(worker,)) for worker in workers]
    try:
        for thread in starters:
            thread.start()
        for thread in starters:
            thread.join(120)
        assert not failed, failed
        for web in webs:
            wait_for(web.answers, timeout=60, what=f"gunicorn on {web.port}")
        yield {"kind": kind, "webs": webs, "workers": workers, "receiver_log": receiver.log_path}
    finally:
        for process in [web.process for web in webs] + [worker.process for worker in workers]:
            if process and process.poll() is None:
                process.terminate()  # all at once: each then stops within its own grace, not one after another
        for web in webs:
            web.stop()
        for worker in workers:
            worker.stop()
        broker.stop(kill=True)


def _call(url: str, token: str, scheme: str, body=None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else b"",
                                     method="POST", headers={"Authorization": f"{scheme} {token}",
                                                             "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        text = response.read()
        return response.status, json.loads(text) if text else {}


def test_two_webs_and_two_workers_keep_every_invariant(two_nodes, detector_token, policy, make_staff):
    webs, workers = two_nodes["webs"], two_nodes["workers"]
    started = time.monotonic()

    # 1. Four clients, each posting three batches to alternating webs; in each round a client's batch overlaps the
    #    next client's by half (half of them reversed), so the same flags arrive through both webs at once.
    def batch(client: int, number: int) -> list[dict]:
        base = (number * CLIENTS + client) * PER_BATCH // 2
        flags = [flag_payload(n, account_id=f"acct_{(n * 7919) % ACCOUNTS}", request_count=n % 500 + 1,
                              score=(n % 101) / 100, signal=Signal.values[n % len(Signal.values)],
                              observed_to=f"2026-11-{21 + n % 5}T00:00:00Z") for n in range(base, base + PER_BATCH)]
        return flags[::-1] if client % 2 else flags

    unique = {f["external_id"] for c in range(CLIENTS) for b in range(BATCHES) for f in batch(c, b)}
    answers: list[dict] = []
    barrier = threading.Barrier(CLIENTS)

    def post(client: int) -> None:
        barrier.wait(30)
        for number in range(BATCHES):
            web = webs[(client + number) % 2]
            status, answer = _call(f"{web.url()}/api/v1/flags/", detector_token, "Bearer",
                                   {"flags": batch(client, number)})
            assert status in (200, 201) and answer["rejected"] == [] and answer["conflicts"] == [], answer
            answers.append(answer)

    run_in_threads(post, CLIENTS)
    assert sum(a["created"] for a in answers) == len(unique)
    assert sum(a["duplicates"] for a in answers) == CLIENTS * BATCHES * PER_BATCH - len(unique)
    wait_for(lambda: not Flag.objects.filter(case__isnull=True).exists(), timeout=120,
             what="the two worker nodes to group every flag")
    cases = set(Case.objects.values_list("pk", flat=True))

    # 2. Six reviewers claim and decide at once: claim-next through one web, the decision through the other.
    tokens = [issue_api_token(actor=user, user=user, name="two-node test")[1]
              for user in (make_staff(Role.REVIEWER) for _ in range(REVIEWERS))]
    claimed: list[tuple[int, int]] = []
    barrier = threading.Barrier(REVIEWERS)

    def review(reviewer: int) -> None:
        barrier.wait(30)
        for attempt in range(3 * ACCOUNTS):  # bounded: more rounds than there are cases
            took = False
            for queue in Queue.values:
                status, answer = _call(f"{webs[attempt % 2].url()}/api/v1/queues/{queue}/claim-next",
                                       tokens[reviewer], "Token")
                if status == 204:
                    continue
                assert status == 200, answer
                claimed.append((answer["id"], reviewer))
                status, decision = _call(f"{webs[(attempt + 1) % 2].url()}/api/v1/cases/{answer['id']}/decisions",
                                         tokens[reviewer], "Token", WARN)
                assert status == 201 and decision["state"] == "enforced", decision
                took = True
            if not took:
                return

    run_in_threads(review, REVIEWERS)

    # 3. Every webhook delivered through the outbox, by whichever node took it.
    wait_for(lambda: OutboxMessage.objects.filter(kind="enforcement").count() == len(cases)
             and not OutboxMessage.objects.exclude(state=OutboxMessage.State.DELIVERED).exists(),
             timeout=90, what="every outbox message to be delivered")
    received = applied(two_nodes["receiver_log"])

    # Ingestion: each flag once, in exactly one case, one case per account, aggregates exact.
    assert Flag.objects.count() == len(unique) and not FlagSetAside.objects.exists()
    assert not Flag.objects.filter(case__isnull=True).exists()
    assert Flag.objects.values("account_external_id").distinct().count() == ACCOUNTS == len(cases)
    assert Flag.objects.values("case_id").distinct().count() == ACCOUNTS
    assert aggregates_disagree() == {}
    # Claims: no case claimed by two reviewers, every case claimed and decided once.
    by_case = collections.Counter(case for case, _ in claimed)
    assert [case for case, n in by_case.items() if n > 1] == []
    assert set(by_case) == cases
    assert sorted(Decision.objects.values_list("case_id", flat=True)) == sorted(cases)
    claim_events = collections.Counter(AuditEvent.objects.filter(action="case.claimed")
                                       .values_list("target_id", flat=True))
    assert claim_events == collections.Counter(str(case) for case in cases)
    # Webhooks: each decision's applied exactly once.
    keys = collections.Counter(entry["idempotency_key"] for entry in received)
    assert keys == collections.Counter(f"enforcement-apply-{pk}" for pk in Decision.objects.values_list("pk",
                                                                                                        flat=True))
    # The audit chain, once every committed event has its place.
    sequence_audit()
    report = chain_verify()
    assert report.ok and report.unsequenced == 0, report
    assert report.count == AuditEvent.objects.count()
    # Both nodes worked, both webs served.
    done = [_tasks_done(worker.log_path) for worker in workers]
    served = [web.served() for web in webs]
    print(f"{two_nodes['kind']}: {time.monotonic() - started:.1f} s; tasks per node {[dict(d) for d in done]}; "
          f"requests per web {served}; {len(unique)} flags, {len(cases)} cases, {len(received)} webhooks")
    assert all(sum(d.values()) > 0 for d in done), done
    assert all(d["group_pending_flags"] + d["deliver"] > 0 for d in done), done
    assert all(count > 0 for count in served), served
