"""Verification from the browser: a compliance officer's POST starts a run that a real Celery worker performs.

The worker of these tests has queues of its own (its own CELERY_QUEUE_PREFIX: no session worker of an
earlier test takes its tasks) and is configured as production would be: a checkpoint file, the checkpoint
key and a witness (a real receiver over HTTP, started per test on the port the worker was given).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pgtrigger
import pytest
from django.test import override_settings
from django.urls import reverse

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.checkpoints import audit_checkpoint, checkpoint_file_entries
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.services import SYSTEM, Entry, record_many
from reviewapp.compliance.verification.models import VerificationRun
from reviewapp.outbox.handlers import deliver_witness_checkpoint
from reviewapp.outbox.models import OutboxMessage
from reviewapp.people.roles import Role
from tests.audit.test_checkpoints import _rewrite_history_and_rehash
from tests.conftest import _free_port
from tests.support import CeleryWorker, child_env, sequence_audit, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.xdist_group("worker"), pytest.mark.django_db(transaction=True)]

KEY = "verification-test-checkpoint-key"
SECRET = "verification-test-witness-secret-0123456789"


@dataclass
class Verifier:
    prefix: str
    checkpoint_file: Path
    witness_port: int

    @property
    def witness_url(self) -> str:
        return f"http://127.0.0.1:{self.witness_port}/witness/checkpoints"


@pytest.fixture(scope="module")
def verifier(django_db_setup, django_db_blocker, artifacts_dir, tmp_path_factory):
    checkpoint_file = tmp_path_factory.mktemp("verification") / "checkpoints.jsonl"
    spec = Verifier(prefix=f"auditx{os.getpid()}-", checkpoint_file=checkpoint_file, witness_port=_free_port())
    with django_db_blocker.unblock():
        env = child_env(CELERY_QUEUE_PREFIX=spec.prefix, AUDIT_CHECKPOINT_FILE=str(checkpoint_file),
                        AUDIT_CHECKPOINT_KEY=KEY, AUDIT_WITNESS_URL=spec.witness_url, AUDIT_WITNESS_SECRET=SECRET)
    worker = CeleryWorker(env, artifacts_dir / f"celery-worker-verification-{os.getpid()}.log",
                          name=f"{spec.prefix}verifier@%h").start()
    yield spec
    worker.stop()


@pytest.fixture
def witness(verifier, start_receiver, tmp_path):
    """This test's witness (empty), and this process configured like the worker: runs it starts go to its queues."""
    verifier.checkpoint_file.unlink(missing_ok=True)  # the chain starts empty in every transactional test
    server = start_receiver(port=verifier.witness_port, secret=SECRET, log_path=tmp_path / "witness" / "log.jsonl")
    with override_settings(CELERY_QUEUE_PREFIX=verifier.prefix, AUDIT_CHECKPOINT_FILE=verifier.checkpoint_file,
                           AUDIT_CHECKPOINT_KEY=KEY, AUDIT_WITNESS_URL=verifier.witness_url,
                           AUDIT_WITNESS_SECRET=SECRET):
        yield server


@pytest.fixture
def officer_client(make_staff, client):
    officer = make_staff(Role.COMPLIANCE_OFFICER, username="olga")
    client.force_login(officer)
    client.officer = officer
    return client


def _events(n: int) -> None:
    record_many([Entry(actor=SYSTEM, action=AuditAction.STAFF_CREATED, data={"i": i}) for i in range(n)])


def _checkpoint_and_witness(verifier: Verifier) -> int:
    """Sign the chain's head into the checkpoint file and send the witness its copy (what beat and the outbox do);
    returns the seq signed."""
    while AuditEvent.objects.filter(seq__isnull=True).exists():  # the after-commit sequencer stops at a time budget
        sequence_audit()  # (beat's backstop, every second, takes the rest; no beat here)
    event = audit_checkpoint(checkpoint_file=verifier.checkpoint_file, key=KEY)
    entry = list(checkpoint_file_entries(verifier.checkpoint_file))[-1]
    deliver_witness_checkpoint(OutboxMessage(kind="witness", payload=entry,
                                             idempotency_key=f"audit-checkpoint-{entry['seq']}"))
    assert event.data["head_seq"] == entry["seq"]
    return entry["seq"]


def _start(client) -> VerificationRun:
    response = client.post(reverse("compliance:verify"))
    assert response.status_code == 302
    run = VerificationRun.objects.get()
    assert response["Location"] == reverse("compliance:verification", args=[run.pk])
    return run


def _finished(run: VerificationRun) -> VerificationRun:
    return wait_for(lambda: VerificationRun.objects.filter(pk=run.pk, status__in=VerificationRun.FINISHED).first(),
                    timeout=90, what="the worker to finish the verification run")


def _page(client, run: VerificationRun) -> str:
    return client.get(reverse("compliance:verification", args=[run.pk])).content.decode()


def test_an_intact_chain_verifies_ok_against_the_checkpoints_and_the_witness(verifier, witness, officer_client):
    _events(5)
    signed = _checkpoint_and_witness(verifier)
    _events(3)  # after the checkpoint: the unwitnessed tail
    run = _start(officer_client)
    queued = officer_client.get(reverse("compliance:verification", args=[run.pk]))
    if queued.context["run"].status in (VerificationRun.Status.QUEUED, VerificationRun.Status.RUNNING):
        assert queued["Refresh"] == "2" and "<progress" in queued.content.decode()
    run = _finished(run)
    assert run.status == VerificationRun.Status.OK, (run.reason, run.checkpoints, run.witness)
    assert run.checkpoints["status"] == "ok" and run.witness["status"] == "ok"
    assert run.checkpoints["last_seq"] == run.witness["last_seq"] == signed
    head = AuditEvent.objects.filter(seq__lte=run.head_seq).order_by("-seq").first()
    assert run.head_hash == head.hash
    assert run.events_checked == run.events_total == run.head_seq
    assert run.unwitnessed == run.head_seq - signed >= 4  # three events and the checkpoint's own record

    response = officer_client.get(reverse("compliance:verification", args=[run.pk]))
    assert not response.has_header("Refresh")  # finished: no more reloading
    page = response.content.decode()
    assert f"OK: {run.events_checked} events, the chain is intact" in page
    assert "here and at the witness" in page
    assert f"{run.unwitnessed} events after the last signed checkpoint" in page
    assert f'<progress id="verification-bar" value="{run.events_checked}" max="{run.events_total}"' in page

    # Its start and its result are audit events: the officer started it, the system recorded the outcome.
    started = AuditEvent.objects.get(action=AuditAction.COMPLIANCE_VERIFICATION_STARTED)
    assert (started.actor_id, started.target_type, started.target_id) == (
        str(officer_client.officer.pk), "compliance_verification.verificationrun", str(run.pk))
    finished = AuditEvent.objects.get(action=AuditAction.COMPLIANCE_VERIFICATION_FINISHED)
    assert finished.target_id == str(run.pk)
    assert finished.data["status"] == "ok" and finished.data["unwitnessed"] == run.unwitnessed
    assert finished.data["checkpoints"] == finished.data["witness"] == "ok"


def test_a_tampered_event_is_named_as_the_first_broken_link(verifier, witness, officer_client):
    _events(6)
    _checkpoint_and_witness(verifier)
    victim = AuditEvent.objects.get(seq=4)
    with pgtrigger.ignore("audit.AuditEvent:audit_append_only"):  # behind the triggers, as an intruder would
        AuditEvent.objects.filter(pk=victim.pk).update(data={"i": "forged"})
    run = _finished(_start(officer_client))
    assert run.status == VerificationRun.Status.BROKEN
    assert run.broken_seq == 4 and run.events_checked == 3
    assert run.reason == "event 4 was changed after it was written (its hash does not match)"
    page = _page(officer_client, run)
    assert "BROKEN at event" in page
    assert f'<a href="{reverse("compliance:audit-event", args=[victim.pk])}">#4</a>' in page
    assert "was changed after it was written" in page
    assert "not compared (the chain is broken)" in page
    finished = AuditEvent.objects.get(action=AuditAction.COMPLIANCE_VERIFICATION_FINISHED)
    assert (finished.data["status"], finished.data["broken_seq"]) == ("broken", 4)


def test_a_rewrite_that_recomputed_every_hash_is_caught_by_the_signed_checkpoints(verifier, witness, officer_client):
    _events(5)
    signed = _checkpoint_and_witness(verifier)
    _rewrite_history_and_rehash(from_seq=3)  # self-consistent: only the signed head tells
    run = _finished(_start(officer_client))
    assert run.status == VerificationRun.Status.BROKEN
    assert run.checkpoints["status"] == run.witness["status"] == "mismatch"
    assert run.broken_seq == signed
    assert f"event {signed} differs from its signed checkpoint" in run.reason
    page = _page(officer_client, run)
    assert "MISMATCH" in page and f"event {signed} differs from its signed checkpoint" in page


def test_the_progress_bar_moves_while_the_worker_verifies(verifier, witness, officer_client):
    _events(30_000)  # progress is reported every 5,000 events (audit.selectors.chain_verify)
    _checkpoint_and_witness(verifier)
    run = _start(officer_client)
    seen: list[tuple[int, int]] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        response = officer_client.get(reverse("compliance:verification", args=[run.pk]))
        page = response.content.decode()
        match = re.search(r'<progress id="verification-bar" value="(\d+)" max="(\d+)"', page)
        seen.append((int(match[1]), int(match[2])))
        if "Verifying the chain" in page:
            assert response["Refresh"] == "2" and "Stop reloading" in page
        if response.context["run"].finished:
            break
    finished = VerificationRun.objects.get(pk=run.pk)
    assert finished.status == VerificationRun.Status.OK
    values = [value for value, _ in seen]
    assert values == sorted(values)  # never backwards
    assert any(0 < value < total for value, total in seen), seen  # part-way, as the officer watched it
    assert seen[-1] == (finished.events_checked, finished.events_total)
    assert finished.events_total >= 30_000


def test_a_chain_never_checkpointed_is_incomplete_not_ok(verifier, witness, officer_client):
    _events(3)  # no checkpoint in the file, none at the witness: nothing vouches for the chain outside the database
    run = _finished(_start(officer_client))
    assert run.status == VerificationRun.Status.INCOMPLETE
    assert run.checkpoints["status"] == run.witness["status"] == "none"
    assert run.unwitnessed == run.head_seq > 0
    page = _page(officer_client, run)
    assert "INCOMPLETE" in page and "no checkpoint found" in page
