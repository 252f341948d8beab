"""The push follows the TAXII status resource to completion (issue 10): pending → sent, pending → partially
accepted, failed — against a real TAXII 2.1 server process that, unlike medallion, answers "pending" first
(tests/forum/taxii_standin.py on its own port). Delivery runs the outbox's own delivery in this process, one
step at a time; nothing is queued to a broker (a session worker of an earlier test must not take the steps)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.utils import timezone

from reviewapp.audit.models import AuditEvent
from reviewapp.forum import services
from reviewapp.forum.bundles import bundle_build
from reviewapp.forum.content import ShareChoice
from reviewapp.forum.models import ForumPush, SharedObject
from reviewapp.outbox.models import OutboxMessage
from reviewapp.outbox.services import outbox_deliver
from tests.support import ROOT

from .conftest import COLLECTIONS, FRONTIER, _free_port, assert_valid_bundle

pytestmark = pytest.mark.django_db(transaction=True)

CHOICE = ShareChoice(campaign_summary=True, fingerprints=frozenset({"9f3c0a77e41b2d10"}), volume_stats=True,
                     account_pseudonyms=True, organization_pseudonyms=True)


class StandIn:
    """tests/forum/taxii_standin.py as a child process on ``port``."""

    def __init__(self, port: int, mode: str, log_path: Path):
        self.port, self.mode, self.log_path = port, mode, log_path
        self.process: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_root(self) -> str:
        return f"{self.base}/forum/"

    def start(self) -> StandIn:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "forum" / "taxii_standin.py"), "--port", str(self.port),
             "--collections", ",".join(COLLECTIONS), "--mode", self.mode],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the stand-in exited: {self.log_path.read_text()[-2000:]}")
            try:
                if requests.get(f"{self.base}/_stats", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError("the TAXII stand-in did not come up")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def stats(self) -> dict:
        return requests.get(f"{self.base}/_stats", timeout=5).json()

    def set_mode(self, mode: str) -> None:
        requests.post(f"{self.base}/_mode", json={"mode": mode}, timeout=5).raise_for_status()


@pytest.fixture
def standin(request, settings, artifacts_dir, monkeypatch):
    """A stand-in hub in the mode the test parametrizes (``indirect``); this process's settings point at it.
    Nothing is sent to the broker: the test delivers each message itself."""
    monkeypatch.setattr("reviewapp.outbox.services._queue_delivery", lambda message_id: None)
    mode = request.param
    port = _free_port()
    hub = StandIn(port, mode, artifacts_dir / f"taxii-standin-{port}.log").start()
    settings.FORUM_TAXII_API_ROOT = hub.api_root
    yield hub
    hub.stop()


def _approved(world, people):
    campaign, _ = world.campaign(5)
    proposal = services.share_propose(proposer=people["reviewer"], source=campaign, choice=CHOICE,
                                      collection_id=FRONTIER)
    version = services.current_version(proposal)
    built = bundle_build(version)
    assert_valid_bundle(built.canonical)
    services.share_approve(officer=people["officer"], proposal=proposal, version_number=version.number,
                           bundle_sha256=built.sha256)
    return ForumPush.objects.get(proposal=proposal), built


def _step(kind: str) -> OutboxMessage:
    """One delivery try of the newest message of ``kind``, due now (what the worker does when it is due)."""
    message = OutboxMessage.objects.filter(kind=kind).order_by("-id").first()
    assert message is not None, f"no {kind} message"
    OutboxMessage.objects.filter(pk=message.pk, state="pending").update(next_attempt_at=timezone.now())
    outbox_deliver(message_id=message.pk)
    message.refresh_from_db()
    return message


def _state(push: ForumPush) -> ForumPush:
    push.refresh_from_db()
    return push


@pytest.mark.parametrize("standin", ["pending:2"], indirect=True)
def test_pending_then_complete_moves_the_push_from_pending_to_sent(standin, world, sharing_people):
    push, built = _approved(world, sharing_people)
    total = len(built.bundle["objects"])
    assert _state(push).state == ForumPush.State.PENDING and not push.status_id

    sent = _step("forum_push")
    assert sent.state == "delivered"
    push = _state(push)
    # Posted; the hub is still working on it: pending, with what the hub said.
    assert push.state == ForumPush.State.PENDING and push.status_id and push.sent_at
    assert (push.pending_count, push.success_count, push.failure_count) == (total, 0, 0)
    assert SharedObject.objects.filter(push=push).count() == total
    assert not SharedObject.objects.filter(push=push, accepted=True).exists()

    for attempt in (1, 2):  # the stand-in says pending twice more
        follow = _step("forum_status")
        assert follow.state == "pending" and follow.attempts == attempt
        assert "still processing" in follow.last_error and f"{total} of {total} objects pending" in follow.last_error
        assert _state(push).state == ForumPush.State.PENDING

    assert _step("forum_status").state == "delivered"
    push = _state(push)
    assert push.state == ForumPush.State.SENT and push.completed_at
    assert (push.success_count, push.failure_count, push.pending_count) == (total, 0, 0)
    assert SharedObject.objects.filter(push=push, accepted=True).count() == total
    stats = standin.stats()
    assert stats["posts"] == 1 and stats["objects_posted"] == total and stats["status_gets"] == 3
    completed = AuditEvent.objects.get(action="share.push_completed", target_id=str(push.pk))
    assert completed.data["state"] == "sent" and completed.data["accepted"] == total
    # Read back from the stand-in: it holds every object once.
    from reviewapp.forum import taxii
    from reviewapp.forum.trust_groups import trust_group

    held = taxii.read_objects(trust_group(FRONTIER))
    assert sorted(o["id"] for o in held) == sorted(o["id"] for o in built.bundle["objects"])


@pytest.mark.parametrize("standin", ["partial:1"], indirect=True)
def test_pending_then_some_failures_is_partially_accepted(standin, world, sharing_people):
    push, built = _approved(world, sharing_people)
    indicators = {o["id"] for o in built.bundle["objects"] if o["type"] == "indicator"}
    total = len(built.bundle["objects"])
    assert indicators
    _step("forum_push")
    assert _state(push).state == ForumPush.State.PENDING
    assert _step("forum_status").state == "pending"
    assert _step("forum_status").state == "delivered"
    push = _state(push)
    # The stand-in counts its successes without listing them: what was sent less the listed failures.
    assert push.state == ForumPush.State.PARTIAL
    assert push.success_count == total - len(indicators) and push.failure_count == len(indicators)
    assert {f["id"] for f in push.failures} == indicators
    assert all(f["message"] == "refused by the stand-in" for f in push.failures)
    accepted = set(SharedObject.objects.filter(push=push, accepted=True).values_list("stix_id", flat=True))
    assert accepted == {o["id"] for o in built.bundle["objects"]} - indicators
    assert standin.stats()["posts"] == 1
    event = AuditEvent.objects.get(action="share.push_completed", target_id=str(push.pk))
    assert event.data["state"] == "partial" and event.data["failed"] == len(indicators)


@pytest.mark.parametrize("standin", ["failed"], indirect=True)
def test_every_object_refused_is_failed(standin, world, sharing_people):
    push, built = _approved(world, sharing_people)
    assert _step("forum_push").state == "delivered"
    push = _state(push)
    assert push.state == ForumPush.State.FAILED
    assert push.success_count == 0 and push.failure_count == len(built.bundle["objects"])
    assert not OutboxMessage.objects.filter(kind="forum_status").exists()  # complete at once: nothing to follow
    assert not SharedObject.objects.filter(push=push, accepted=True).exists()


@pytest.mark.parametrize("standin", ["never"], indirect=True)
def test_a_hub_restarted_mid_processing_gets_the_bundle_again_once(standin, world, sharing_people):
    """The hub forgets the request (a restart: its memory is gone, status resource included): the follow-up finds
    no status (404), the bundle is posted again under a message of its own, and the new hub holds it once."""
    push, built = _approved(world, sharing_people)
    total = len(built.bundle["objects"])
    _step("forum_push")
    assert _step("forum_status").state == "pending"
    lost = _state(push).status_id
    standin.stop()
    standin.mode = "pending:0"
    standin.start()  # the same port, nothing remembered

    assert _step("forum_status").state == "delivered"
    push = _state(push)
    assert push.state == ForumPush.State.PENDING and not push.status_id and lost in push.last_error
    again = OutboxMessage.objects.filter(kind="forum_push").order_by("-id").first()
    assert again.idempotency_key == f"forum-push-{push.pk}-{lost}"
    assert _step("forum_push").state == "delivered"
    assert _step("forum_status").state == "delivered"
    push = _state(push)
    assert push.state == ForumPush.State.SENT and push.success_count == total
    assert standin.stats()["posts"] == 1 and standin.stats()["objects_posted"] == total
    assert SharedObject.objects.filter(push=push).count() == total  # the ledger kept one row per object
