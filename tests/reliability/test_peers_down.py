"""The TAXII hub and the enforcement receiver down for minutes while decisions and shares keep being made:
delay, never loss.

Two worker nodes and a real beat (the outbox reconciler every 2 s, the audit sequencer, the heartbeat), with the
back-off low (1 s doubling, at most 8 s, attempts unbounded in practice) so that an outage of
FAULT_OUTAGE_SECONDS (default 120; "minutes" is many times the back-off cap) sees many retries. The session's
worker is stopped for the test (its OUTBOX_MAX_ATTEMPTS=3 would give up) and started again after.

Both peers are stopped; decisions (each an enforcement webhook) and approved Forum shares (each a TAXII push) keep
coming through the services; /healthz names the outbox; both peers come back (the receiver on its log, so it
knows what it applied; medallion empty, as its memory backend always restarts); beat alone delivers the rest.
Counted: the receiver's log (each key once), the hub's objects and their versions (one each), every message
delivered once with attempts > 1 for those made in the outage, no message given up, the audit chain.
"""

from __future__ import annotations

import io
import os
import time

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.urls import reverse

from reviewapp.audit.models import AuditEvent
from reviewapp.audit.selectors import chain_verify
from reviewapp.cases.services.claims import case_claim
from reviewapp.cases.services.decisions import decision_record
from reviewapp.core import health
from reviewapp.forum import services as forum
from reviewapp.forum.bundles import bundle_build
from reviewapp.forum.content import ShareChoice
from reviewapp.forum.models import ForumPush
from reviewapp.outbox.models import OutboxMessage
from reviewapp.outbox.receiver import EnforcementReceiver
from reviewapp.people.roles import Role
from tests.conftest import _free_port, applied
from tests.forum.conftest import FRONTIER, ForumHub, World
from tests.support import CeleryWorker, child_env, wait_for

from .faults import Beat, FaultLog

pytestmark = [pytest.mark.worker, pytest.mark.xdist_group("worker"), pytest.mark.django_db(transaction=True)]

OUTAGE_SECONDS = float(os.environ.get("FAULT_OUTAGE_SECONDS") or 120)
DECISIONS, SHARES = 6, 3  # made while the peers are down, spread over the outage
RETRY_CAP_SECONDS = 8
HEALTH_LIMIT_SECONDS = max(2, min(15, int(OUTAGE_SECONDS / 4)))  # well inside the outage
CHOICE = ShareChoice(campaign_summary=True, fingerprints=frozenset({"9f3c0a77e41b2d10"}), volume_stats=True,
                     account_pseudonyms=True, organization_pseudonyms=True)
FACTS = "Between 20 and 21 November the account sent 48,000 templated prompts."


class _Receiver:
    """The enforcement receiver (a thread here) on a fixed port and log: stop() and start() again for an outage."""

    def __init__(self, port: int, log_path):
        self.port, self.log_path, self.server, self.out = port, log_path, None, io.StringIO()

    def start(self) -> _Receiver:
        self.server = EnforcementReceiver(("127.0.0.1", self.port), secret=django_settings.ENFORCEMENT_WEBHOOK_SECRET,
                                          log_path=self.log_path, out=self.out).serve_in_thread()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


@pytest.fixture
def stack(celery_worker, settings, tmp_path, artifacts_dir):
    """Two nodes and a beat on the session's queues, pointed at a receiver and a hub of this test's own."""
    receiver = _Receiver(_free_port(), tmp_path / "enforcement-received.jsonl")
    hub = ForumHub(_free_port(), tmp_path / "hub", artifacts_dir / f"forum-hub-peers-down-{os.getpid()}.log")
    settings.FORUM_TAXII_API_ROOT = hub.api_root
    settings.HEALTH_OUTBOX_MAX_AGE_SECONDS = HEALTH_LIMIT_SECONDS
    env = child_env(
        ENFORCEMENT_WEBHOOK_URL=f"http://127.0.0.1:{receiver.port}/enforcement",
        ENFORCEMENT_WEBHOOK_SECRET=django_settings.ENFORCEMENT_WEBHOOK_SECRET, FORUM_TAXII_API_ROOT=hub.api_root,
        OUTBOX_RETRY_BASE_SECONDS="1", OUTBOX_RETRY_MAX_SECONDS=str(RETRY_CAP_SECONDS), OUTBOX_MAX_ATTEMPTS="10000",
        OUTBOX_RECONCILE_INTERVAL_SECONDS="2", FLAGS_RECONCILE_INTERVAL_SECONDS="5", FORUM_PULL_INTERVAL_SECONDS="3600",
        FORUM_TAXII_TIMEOUT_SECONDS="5", HEALTH_HEARTBEAT_INTERVAL_SECONDS="2",
        HEALTH_OUTBOX_MAX_AGE_SECONDS=str(HEALTH_LIMIT_SECONDS),
        AUDIT_CHECKPOINT_FILE=str(tmp_path / "checkpoints.jsonl"),
    )
    celery_worker.stop()  # its OUTBOX_MAX_ATTEMPTS=3 would give up during the outage
    started: list = []
    try:
        receiver.start()
        hub.start()
        for letter in "ab":
            started.append(CeleryWorker(env, artifacts_dir / f"celery-worker-peers-down-{letter}-{os.getpid()}.log",
                                        concurrency=2, name=f"peers{letter}{os.getpid()}@%h").start())
        started.append(Beat(env, tmp_path / "beat-schedule",
                            artifacts_dir / f"celery-beat-peers-down-{os.getpid()}.log"))
        yield receiver, hub
    finally:
        for process in reversed(started):  # private to this test, and idle by now: no need to wait for them
            process.kill() if isinstance(process, CeleryWorker) else process.stop()
        hub.stop()
        receiver.stop()
        cache.delete_many([health.HEARTBEAT_QUEUED_KEY, health.HEARTBEAT_ANSWERED_KEY])
        celery_worker.start()


def _decide(world: World, reviewer, policy) -> int:
    _, case = world.account(decided=False)
    case_claim(reviewer=reviewer, case=case)
    return decision_record(reviewer=reviewer, case=case, clauses=[policy["extraction"]], action="suspend",
                           duration_days=30, rationale="Templated prompts at scale.", facts_for_holder=FACTS).pk


def _share(world: World, people) -> tuple[int, list[str]]:
    campaign, _ = world.campaign(5)
    proposal = forum.share_propose(proposer=people["reviewer"], source=campaign, choice=CHOICE,
                                   collection_id=FRONTIER)
    version = forum.current_version(proposal)
    built = bundle_build(version)
    forum.share_approve(officer=people["officer"], proposal=proposal, version_number=version.number,
                        bundle_sha256=built.sha256)
    return ForumPush.objects.get(proposal=proposal).pk, [o["id"] for o in built.bundle["objects"]]


def _healthz(client) -> dict:
    return client.get(reverse("healthz")).json()


def test_hub_and_receiver_down_for_minutes_mean_delay_never_loss(stack, client, policy, detector, make_staff):
    receiver, hub = stack
    log = FaultLog("peers-down")
    people = {"reviewer": make_staff(Role.REVIEWER, username="rita"),
              "officer": make_staff(Role.SHARING_OFFICER, username="otto")}
    world = World(policy, detector, people["reviewer"])
    enforcement = OutboxMessage.objects.filter(kind="enforcement")

    before = _decide(world, people["reviewer"], policy)  # a baseline: delivered while everything is up
    wait_for(lambda: enforcement.filter(state="delivered").count() == 1, timeout=60, what="the baseline delivery")

    receiver.stop()
    hub.stop()
    down_at = log.at()
    log.note(f"stopped the enforcement receiver (port {receiver.port}) and the TAXII hub (port {hub.port}) for "
             f"{OUTAGE_SECONDS:.0f} s; back-off 1 s doubling, cap {RETRY_CAP_SECONDS} s; beat reconciles every 2 s")
    decisions, pushes, objects = [before], [], []
    stalled_at, down_parts = None, []
    plan = sorted([(OUTAGE_SECONDS * (i + 0.5) / DECISIONS, "decision") for i in range(DECISIONS)]
                  + [(OUTAGE_SECONDS * (i + 0.5) / SHARES, "share") for i in range(SHARES)])
    while log.at() - down_at < OUTAGE_SECONDS:  # bounded by the outage
        if plan and log.at() - down_at >= plan[0][0]:
            _, what = plan.pop(0)
            if what == "decision":
                decisions.append(_decide(world, people["reviewer"], policy))
            else:
                push, ids = _share(world, people)
                pushes.append(push)
                objects.extend(ids)
        body = _healthz(client)
        if body["outbox"] == "stalled" and stalled_at is None:
            stalled_at, down_parts = log.at() - down_at, body["down"]
            log.note(f"/healthz names the outbox {stalled_at:.0f} s into the outage (limit {HEALTH_LIMIT_SECONDS} s): "
                     f"down = {down_parts}")
        time.sleep(1)
    assert not plan
    during = {"delivered": OutboxMessage.objects.filter(state="delivered").count(),
              "pending": OutboxMessage.objects.filter(state="pending").count(),
              "attempts": sum(OutboxMessage.objects.filter(state="pending").values_list("attempts", flat=True))}
    log.note(f"made {len(decisions) - 1} decisions and {len(pushes)} shares in the outage; at its end: {during}")
    assert stalled_at is not None, "/healthz never named the outbox while its peers were down"
    assert down_parts == ["outbox"], "only the outbox is named: the workers, grouping and the audit sequencer flow"
    assert during["delivered"] == 1 and ForumPush.objects.filter(state="pending").count() == SHARES

    receiver.start()
    hub.start()
    up_at = log.at()
    log.note("started the receiver (same log) and the hub (empty, as medallion always restarts)")
    undelivered = OutboxMessage.objects.exclude(state="delivered")
    wait_for(lambda: not undelivered.exists() and not ForumPush.objects.exclude(state="sent").exists(), timeout=120,
             interval=0.5, what="every message delivered and every push sent, by beat alone")
    recovered = log.at() - up_at
    body = _healthz(client)
    log.note(f"everything delivered {recovered:.1f} s after the peers came back; /healthz outbox {body['outbox']}")
    assert body["outbox"] == "ok"

    keys = sorted(enforcement.values_list("idempotency_key", flat=True))
    entries = [entry["idempotency_key"] for entry in applied(receiver.log_path)]
    made_in_outage = OutboxMessage.objects.exclude(idempotency_key=f"enforcement-apply-{before}")
    attempts = sorted(made_in_outage.values_list("attempts", flat=True))
    held = hub.objects()
    versions = {stix_id: len(hub.versions(stix_id)) for stix_id in set(objects)}
    log.note(f"compared: receiver applied {len(entries)} ({len(set(entries))} distinct) of {len(keys)} enforcement "
             f"messages; hub holds {len(held)} objects for {len(set(objects))} distinct ids pushed, versions per id "
             f"{sorted(set(versions.values()))}; attempts of the {len(attempts)} messages made in the outage "
             f"{attempts[0]}..{attempts[-1]}")
    assert sorted(entries) == keys and len(keys) == DECISIONS + 1, "each enforcement applied exactly once"
    assert sorted(o["id"] for o in held) == sorted(set(objects)), "every pushed object on the hub, once"
    assert set(versions.values()) == {1}
    assert attempts[0] > 1, "every message made in the outage was retried"
    assert not OutboxMessage.objects.filter(state="failed").exists()
    for push in ForumPush.objects.all():
        assert AuditEvent.objects.filter(action="share.pushed", target_id=str(push.pk)).count() == 1
    delivered_events = AuditEvent.objects.filter(action="outbox.delivered").values_list("target_id", flat=True)
    assert sorted(delivered_events) == sorted(str(pk) for pk in OutboxMessage.objects.values_list("pk", flat=True))
    assert chain_verify().ok
