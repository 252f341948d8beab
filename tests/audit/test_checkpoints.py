"""Signed checkpoints outside the database, and at a witness, leave only a small tail unwitnessed.

They catch a rewrite that recomputed every later hash, a chain cut shorter than a checkpoint says,
and (through the witness) a rewrite of the database *and* of the local checkpoint file together.
"""

import io
import json
import shutil
from datetime import timedelta

import pgtrigger
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection, transaction
from django.test import override_settings

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.chain import link_hash
from reviewapp.audit.checkpoints import (
    audit_checkpoint,
    checkpoint_file_entries,
    checkpoint_now,
    checkpoint_signature,
    checkpoints_compare,
)
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.selectors import chain_verify
from reviewapp.audit.services import SYSTEM, record
from reviewapp.outbox.models import OutboxMessage
from reviewapp.outbox.services import outbox_deliver
from tests.support import sequence_audit

pytestmark = pytest.mark.django_db
KEY = "checkpoint-test-key"


def _append(n):
    for i in range(n):
        record(actor=SYSTEM, action=AuditAction.STAFF_CREATED, data={"i": i})
    sequence_audit()  # no commit in these tests, so nothing sequences after one


def _checkpoint(path, **kwargs):
    event = audit_checkpoint(checkpoint_file=path, key=KEY, **kwargs)
    sequence_audit()  # the checkpoint's own event
    return event


def _rewrite_history_and_rehash(from_seq: int) -> None:
    """A superuser's careful forgery: edit one event, then recompute every hash after it."""
    fields = ("seq", "created_at", "actor_type", "actor_id", "actor_display", "action",
              "target_type", "target_id", "data")
    rows = list(AuditEvent.objects.filter(seq__isnull=False).order_by("seq").values(*fields, "prev_hash", "hash"))
    prev = rows[from_seq - 2]["hash"]
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL session_replication_role = replica")
        for row in rows[from_seq - 1:]:
            if row["seq"] == from_seq:
                row["data"] = {"i": "forged"}
            new_hash = link_hash(prev_hash=prev, fields=row)
            cur.execute("UPDATE audit_auditevent SET data = %s::jsonb, prev_hash = %s, hash = %s WHERE seq = %s",
                        [json.dumps(row["data"]), prev, new_hash, row["seq"]])
            prev = new_hash


def _resign_file_as_forger(path) -> None:
    """The forger also holds the checkpoint key: every local checkpoint re-signed over the forged chain."""
    lines = []
    for entry in checkpoint_file_entries(path):
        entry["hash"] = AuditEvent.objects.get(seq=entry["seq"]).hash
        entry["signature"] = checkpoint_signature(key=KEY, seq=entry["seq"], head_hash=entry["hash"], at=entry["at"])
        lines.append(json.dumps(entry) + "\n")
    path.write_text("".join(lines))


def _verify(*options):
    """Run verify_audit; return (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_audit", *options, stdout=out, stderr=err)
    except SystemExit as exc:
        return exc.code, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def _compare(path):
    return checkpoints_compare(checkpoint_file_entries(path), key=KEY, head_seq=chain_verify().head_seq)


def test_checkpoint_signs_the_head_and_records_itself(tmp_path):
    _append(4)
    path = tmp_path / "cp.jsonl"
    event = _checkpoint(path)
    assert event.action == AuditAction.AUDIT_CHECKPOINT
    assert event.data["head_seq"] == 4 and event.data["verified"] == 4
    line = json.loads(path.read_text())
    assert line["seq"] == 4 and line["hash"] == AuditEvent.objects.get(seq=4).hash and line["key_id"]
    assert event.data["key_id"] == line["key_id"]
    check = _compare(path)
    assert check.mismatches == [] and check.last.seq == 4


def test_rehashed_forgery_verifies_alone_but_not_against_checkpoints(tmp_path):
    _append(6)
    path = tmp_path / "cp.jsonl"
    _checkpoint(path)
    _rewrite_history_and_rehash(from_seq=3)
    assert chain_verify().ok  # the forgery is self-consistent …
    mismatches = _compare(path).mismatches
    assert [m.seq for m in mismatches] == [6]  # … but the signed head no longer matches
    assert "differs from its signed checkpoint" in mismatches[0].reason


def test_a_forged_checkpoint_line_is_rejected(tmp_path):
    _append(2)
    path = tmp_path / "cp.jsonl"
    _checkpoint(path)
    entry = json.loads(path.read_text())
    entry["hash"] = "0" * 64
    path.write_text(json.dumps(entry) + "\n")
    mismatches = _compare(path).mismatches
    assert len(mismatches) == 1 and "bad signature" in mismatches[0].reason


def test_checkpoint_of_a_broken_chain_records_the_break_once(tmp_path):
    _append(3)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL session_replication_role = replica")
        cur.execute("UPDATE audit_auditevent SET actor_display = 'someone else' WHERE seq = 2")
    path = tmp_path / "cp.jsonl"
    event = _checkpoint(path)
    assert event.action == AuditAction.AUDIT_CHAIN_BROKEN
    assert event.data["broken_seq"] == 2
    assert not path.exists()
    assert _checkpoint(path) is None  # the next minute raises no second alarm for the same break
    assert AuditEvent.objects.filter(action=AuditAction.AUDIT_CHAIN_BROKEN).count() == 1


def test_rewriting_the_last_checkpointed_event_with_a_recomputed_hash_is_caught(tmp_path):
    path = tmp_path / "cp.jsonl"
    _append(4)
    with override_settings(AUDIT_CHECKPOINT_FILE=path, AUDIT_CHECKPOINT_KEY=KEY):
        checkpoint_now()  # what beat runs every minute in which the chain grew
        sequence_audit()
        _rewrite_history_and_rehash(from_seq=4)  # the last event before the checkpoint's own record
        assert _verify()[0] == 0  # self-consistent
        code, _, err = _verify("--checkpoints")
    assert code == 1
    assert "event 4 differs from its signed checkpoint" in err


def test_a_chain_shorter_than_a_checkpoint_says_is_caught(tmp_path):
    path = tmp_path / "cp.jsonl"
    _append(4)
    _checkpoint(path)  # signs seq 4; its own event is seq 5
    with pgtrigger.ignore("audit.AuditEvent:audit_append_only"):
        AuditEvent.objects.filter(seq__gte=4).delete()  # the last two events
    assert chain_verify().ok and chain_verify().head_seq == 3  # nothing left to see in the chain alone
    with override_settings(AUDIT_CHECKPOINT_FILE=path, AUDIT_CHECKPOINT_KEY=KEY):
        code, _, err = _verify("--checkpoints")
    assert code == 1
    at = json.loads(path.read_text())["at"]
    assert f"chain ends at seq 3 but checkpoint at {at} says seq 4" in err
    # The next periodic checkpoint raises the alarm too, and signs nothing over the cut chain.
    event = _checkpoint(path)
    assert event.action == AuditAction.AUDIT_CHAIN_BROKEN
    assert "chain ends at seq 3" in event.data["reason"]
    assert len(path.read_text().splitlines()) == 1


def test_missing_checkpoint_file_fails_closed(tmp_path):
    path = tmp_path / "checkpoints" / "cp.jsonl"
    _append(3)
    _checkpoint(path)
    shutil.move(path.parent, tmp_path / "moved-away")
    with override_settings(AUDIT_CHECKPOINT_FILE=path, AUDIT_CHECKPOINT_KEY=KEY):
        code, out, err = _verify("--checkpoints")
    assert code == 1
    assert "NO CHECKPOINT FOUND" in err and str(path) in err
    assert "agrees" not in out


def test_an_empty_chain_with_no_checkpoint_is_fine(tmp_path):
    with override_settings(AUDIT_CHECKPOINT_FILE=tmp_path / "none.jsonl", AUDIT_CHECKPOINT_KEY=KEY):
        assert _verify("--checkpoints")[0] == 0


def test_idle_runs_add_no_checkpoints(tmp_path):
    path = tmp_path / "cp.jsonl"
    _append(3)
    assert _checkpoint(path) is not None
    events = AuditEvent.objects.count()
    for _ in range(3):  # beat, minute after minute, with nothing new but the checkpoint's own event
        assert _checkpoint(path) is None
    assert AuditEvent.objects.count() == events
    assert len(path.read_text().splitlines()) == 1
    _append(1)  # the chain grew: the next run checkpoints it
    assert _checkpoint(path).data["head_seq"] == 5
    assert [json.loads(line)["seq"] for line in path.read_text().splitlines()] == [3, 5]


def test_verify_says_how_many_events_are_after_the_last_checkpoint(tmp_path):
    path = tmp_path / "cp.jsonl"
    _append(3)
    _checkpoint(path)  # seq 3; its own event is 4
    _append(2)
    at = json.loads(path.read_text())["at"]
    with override_settings(AUDIT_CHECKPOINT_FILE=path, AUDIT_CHECKPOINT_KEY=KEY):
        for options in ((), ("--checkpoints",)):
            code, out, _ = _verify(*options)
            assert code == 0
            assert f"3 events after the last checkpoint (seq 3 at {at})" in out
    with override_settings(AUDIT_CHECKPOINT_FILE=tmp_path / "none.jsonl", AUDIT_CHECKPOINT_KEY=KEY):
        assert "all 6 events are unwitnessed" in _verify()[1]


def _tamper(seq: int) -> None:
    """An edit behind the triggers' back that does not recompute any hash."""
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL session_replication_role = replica")
        cur.execute("UPDATE audit_auditevent SET actor_display = 'someone else' WHERE seq = %s", [seq])


def test_a_checkpoint_verifies_what_was_added_since_the_last_one(tmp_path):
    path = tmp_path / "cp.jsonl"
    _append(3)
    assert _checkpoint(path).data["verified_from"] == 0  # the first one verifies the whole chain
    _append(2)
    event = _checkpoint(path)
    assert (event.data["verified_from"], event.data["verified"], event.data["head_seq"]) == (3, 6, 6)
    _append(1)  # seq 8, after the checkpoint's own event
    _tamper(8)
    event = _checkpoint(path)
    assert event.action == AuditAction.AUDIT_CHAIN_BROKEN and event.data["broken_seq"] == 8
    assert [json.loads(line)["seq"] for line in path.read_text().splitlines()] == [3, 6]


def test_the_whole_chain_is_verified_at_least_hourly(tmp_path, monkeypatch):
    from reviewapp.audit import checkpoints

    path = tmp_path / "cp.jsonl"
    _append(3)
    _checkpoint(path)
    _tamper(2)  # before the last signed head, whose hash it leaves alone
    _append(1)
    assert _checkpoint(path).action == AuditAction.AUDIT_CHECKPOINT  # within the hour: only the new links
    monkeypatch.setattr(checkpoints, "FULL_VERIFICATION_EVERY", timedelta(0))
    _append(1)
    event = _checkpoint(path)
    assert event.action == AuditAction.AUDIT_CHAIN_BROKEN and event.data["broken_seq"] == 2


def test_a_forged_last_checkpoint_stops_the_periodic_checkpoint(tmp_path):
    path = tmp_path / "cp.jsonl"
    _append(2)
    _checkpoint(path)
    entry = json.loads(path.read_text())
    path.write_text(json.dumps({**entry, "hash": "0" * 64}) + "\n")
    _append(1)
    event = _checkpoint(path)
    assert event.action == AuditAction.AUDIT_CHAIN_BROKEN and "bad signature" in event.data["reason"]


def test_the_periodic_run_reads_only_the_end_of_a_long_checkpoint_file(tmp_path):
    path = tmp_path / "cp.jsonl"
    _append(3)
    _checkpoint(path)
    line = path.read_text()
    path.write_text("not a checkpoint\n" + line * 2000)  # ~400 kB; the damaged first line is never read
    assert _checkpoint(path) is None  # idle: the last line is the head
    _append(1)
    assert _checkpoint(path).data["verified_from"] == 3


def test_beat_checkpoints_every_minute_by_default():
    from reviewapp.celery import app

    assert settings.AUDIT_CHECKPOINT_INTERVAL.total_seconds() == 60
    entry = app.conf.beat_schedule["audit-checkpoint"]
    assert entry["task"] == "reviewapp.audit.tasks.audit_checkpoint"
    assert entry["schedule"] == timedelta(seconds=60)


# ── The witness: a copy of each checkpoint leaves through the outbox ──


def test_the_witness_copy_is_an_outbox_row_written_with_the_checkpoint(tmp_path):
    path = tmp_path / "cp.jsonl"
    _append(2)
    event = _checkpoint(path, witness_url="http://witness.example/witness/checkpoints")
    message = OutboxMessage.objects.get(kind="witness")
    assert message.payload == json.loads(path.read_text())
    assert message.idempotency_key == "audit-checkpoint-2"
    assert event.data["witness"] is True
    # No witness configured: no row.
    _append(1)
    _checkpoint(path)
    assert OutboxMessage.objects.filter(kind="witness").count() == 1


@pytest.fixture
def witness(start_receiver, tmp_path):
    """A real receiver (a thread, over HTTP) as the witness; settings pointing the checkpoints at it."""
    server = start_receiver(log_path=tmp_path / "receiver" / "enforcement.jsonl")
    url = f"http://127.0.0.1:{server.server_address[1]}/witness/checkpoints"
    path = tmp_path / "cp.jsonl"
    with override_settings(AUDIT_WITNESS_URL=url, AUDIT_WITNESS_SECRET=server.secret,
                           AUDIT_CHECKPOINT_FILE=path, AUDIT_CHECKPOINT_KEY=KEY):
        server.checkpoint_file = path
        yield server


def _checkpoint_and_deliver():
    checkpoint_now()
    sequence_audit()
    for message in OutboxMessage.objects.filter(kind="witness", state=OutboxMessage.State.PENDING):
        assert outbox_deliver(message_id=message.pk).state == OutboxMessage.State.DELIVERED


def test_delivering_the_witness_copy_does_not_call_for_another_checkpoint(witness):
    _append(2)
    _checkpoint_and_deliver()
    assert AuditEvent.objects.filter(action=AuditAction.OUTBOX_DELIVERED, data__kind="witness").exists()
    sequence_audit()
    assert checkpoint_now() is None  # idle: only the checkpoint's own events since
    assert len(witness.witnessed_checkpoints()) == 1


def test_a_rewrite_of_the_database_and_the_checkpoint_file_is_caught_by_the_witness(witness):
    _append(5)
    _checkpoint_and_deliver()
    _append(2)
    _checkpoint_and_deliver()
    signed = [entry["seq"] for entry in checkpoint_file_entries(witness.checkpoint_file)]
    assert len(signed) == 2 and signed[0] == 5
    assert [entry["seq"] for entry in witness.witnessed_checkpoints()] == signed
    assert _verify("--witness")[0] == 0

    _rewrite_history_and_rehash(from_seq=2)
    _resign_file_as_forger(witness.checkpoint_file)
    code, out, _ = _verify("--checkpoints")
    assert code == 0 and "chain agrees with the 2 signed checkpoints" in out  # the local copy was rewritten too …
    code, _, err = _verify("--witness")
    assert code == 1  # … the witness's was not
    assert f"event {signed[0]} differs from its signed checkpoint" in err and f"event {signed[1]} differs" in err


def test_the_witness_catches_a_cut_tail(witness):
    _append(4)
    _checkpoint_and_deliver()
    with pgtrigger.ignore("audit.AuditEvent:audit_append_only"):
        AuditEvent.objects.filter(seq__gte=4).delete()
    witness.checkpoint_file.unlink()
    code, _, err = _verify("--witness")
    assert code == 1 and "chain ends at seq 3 but checkpoint at" in err


def test_the_witness_fails_closed_when_unreachable_or_empty(witness, tmp_path):
    _append(2)
    code, _, err = _verify("--witness")  # reachable, but holds nothing yet
    assert code == 1 and "NO CHECKPOINT FOUND at the witness" in err
    witness.stop()
    code, _, err = _verify("--witness")
    assert code == 1 and "WITNESS UNAVAILABLE" in err
    with override_settings(AUDIT_WITNESS_URL=""):
        code, _, err = _verify("--witness")
        assert code == 1 and "AUDIT_WITNESS_URL is not set" in err
        code, _, err = _verify("--witness-url", "ftp://127.0.0.1/witness/checkpoints")
        assert code == 1 and "must be http(s)" in err


def test_the_witness_can_be_named_on_the_command_line(witness):
    _append(3)
    _checkpoint_and_deliver()
    url = settings.AUDIT_WITNESS_URL
    with override_settings(AUDIT_WITNESS_URL=""):
        code, out, _ = _verify("--witness-url", url)
    assert code == 0 and f"chain agrees with the 1 signed checkpoint held by the witness at {url}" in out
