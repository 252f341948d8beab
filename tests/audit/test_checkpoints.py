"""Signed checkpoints outside the database catch a rewrite that recomputed every later hash."""

import json

import pytest
from django.db import connection, transaction

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.chain import link_hash
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.selectors import chain_verify, checkpoints_compare
from reviewapp.audit.services import SYSTEM, audit_checkpoint, record
from tests.support import sequence_audit

pytestmark = pytest.mark.django_db
KEY = "checkpoint-test-key"


def _append(n):
    for i in range(n):
        record(actor=SYSTEM, action=AuditAction.STAFF_CREATED, data={"i": i})
    sequence_audit()  # no commit in these tests, so nothing is sequenced after one


def _rewrite_history_and_rehash(from_seq: int) -> None:
    """A superuser's careful forgery: edit one event, then recompute every hash after it."""
    fields = ("seq", "created_at", "actor_type", "actor_id", "actor_display", "action",
              "target_type", "target_id", "data")
    rows = list(AuditEvent.objects.order_by("seq").values(*fields, "prev_hash", "hash"))
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


def test_checkpoint_signs_the_head_and_records_itself(tmp_path):
    _append(4)
    path = tmp_path / "cp.jsonl"
    event = audit_checkpoint(checkpoint_file=path, key=KEY)
    assert event.action == AuditAction.AUDIT_CHECKPOINT
    assert event.data["head_seq"] == 4 and event.data["verified"] == 4
    line = json.loads(path.read_text())
    assert line["seq"] == 4 and line["hash"] == AuditEvent.objects.get(seq=4).hash
    assert checkpoints_compare(path=path, key=KEY) == []


def test_rehashed_forgery_verifies_alone_but_not_against_checkpoints(tmp_path):
    _append(6)
    path = tmp_path / "cp.jsonl"
    audit_checkpoint(checkpoint_file=path, key=KEY)
    _rewrite_history_and_rehash(from_seq=3)
    assert chain_verify().ok  # the forgery is self-consistent …
    mismatches = checkpoints_compare(path=path, key=KEY)
    assert [m.seq for m in mismatches] == [6]  # … but the signed head no longer matches
    assert "differs from its signed checkpoint" in mismatches[0].reason


def test_a_forged_checkpoint_line_is_rejected(tmp_path):
    _append(2)
    path = tmp_path / "cp.jsonl"
    audit_checkpoint(checkpoint_file=path, key=KEY)
    entry = json.loads(path.read_text())
    entry["hash"] = "0" * 64
    path.write_text(json.dumps(entry) + "\n")
    mismatches = checkpoints_compare(path=path, key=KEY)
    assert len(mismatches) == 1 and "bad signature" in mismatches[0].reason


def test_checkpoint_of_a_broken_chain_records_the_break(tmp_path):
    _append(3)
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL session_replication_role = replica")
        cur.execute("UPDATE audit_auditevent SET actor_display = 'someone else' WHERE seq = 2")
    path = tmp_path / "cp.jsonl"
    event = audit_checkpoint(checkpoint_file=path, key=KEY)
    assert event.action == AuditAction.AUDIT_CHAIN_BROKEN
    assert event.data["broken_seq"] == 2
    assert not path.exists()
