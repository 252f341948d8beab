"""The audit chain: gapless, linked, hashed over canonical JSON, append-only in the database."""

import hashlib
import io
import itertools
import uuid
from datetime import date

import pytest
import rfc8785
from django.core.management import call_command
from django.db import connection, transaction
from django.db.utils import DatabaseError

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.chain import GENESIS_HASH
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.selectors import chain_verify
from reviewapp.audit.services import SYSTEM, Actor, Target, record

pytestmark = pytest.mark.django_db


def _append(n: int) -> list[AuditEvent]:
    return [
        record(actor=SYSTEM, action=AuditAction.STAFF_CREATED, target=Target("people.user", str(i)),
               data={"i": i, "when": date(2026, 1, i % 28 + 1), "ref": uuid.UUID(int=i)})
        for i in range(n)
    ]


def test_events_form_a_gapless_linked_chain():
    events = _append(5)
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(events):
        assert after.prev_hash == before.hash


def test_hash_is_sha256_of_prev_hash_and_rfc8785_json():
    event = _append(1)[0]
    stored = AuditEvent.objects.get(seq=event.seq)
    payload = {
        "seq": stored.seq,
        "created_at": stored.created_at.isoformat(timespec="microseconds"),
        "actor_type": "system", "actor_id": "reviewapp", "actor_display": "reviewapp",
        "action": "staff.created", "target_type": "people.user", "target_id": "0",
        "data": {"i": 0, "when": "2026-01-01", "ref": "00000000-0000-0000-0000-000000000000"},
    }
    expected = hashlib.sha256(GENESIS_HASH.encode() + rfc8785.dumps(payload)).hexdigest()
    assert stored.hash == expected


def test_actor_and_target_are_snapshots_that_outlive_the_user(make_staff):
    user = make_staff(username="ephemeral")
    event = AuditEvent.objects.get(action=AuditAction.STAFF_CREATED, target_id=str(user.pk))
    user.delete()
    event.refresh_from_db()
    assert event.target_type == "people.user"
    assert event.data["username"] == "ephemeral"
    assert chain_verify().ok


def test_unknown_action_codes_are_refused():
    with pytest.raises(ValueError, match="not-an-action"):
        record(actor=SYSTEM, action="not-an-action")
    assert AuditEvent.objects.count() == 0


@pytest.mark.parametrize("statement", [
    "UPDATE audit_auditevent SET data = '{\"forged\": true}'::jsonb",
    "DELETE FROM audit_auditevent",
    "TRUNCATE audit_auditevent",
])
def test_database_refuses_update_delete_truncate(statement):
    _append(3)
    with pytest.raises(DatabaseError, match="pgtrigger: Cannot"), transaction.atomic(), connection.cursor() as cur:
        cur.execute(statement)
    assert AuditEvent.objects.count() == 3
    assert chain_verify().ok


def _tamper(sql: str, params=()):
    """What a database superuser could do: switch triggers off for the session and edit rows."""
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL session_replication_role = replica")
        cur.execute(sql, params)


def _verify_audit() -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_audit", stdout=out, stderr=err)
    except SystemExit as exit_:
        return exit_.code, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def test_verify_audit_reports_an_intact_chain_with_its_count():
    _append(7)
    code, out, _ = _verify_audit()
    assert code == 0
    assert "OK: 7 events" in out


def test_verify_audit_names_a_row_changed_behind_the_triggers_back():
    _append(6)
    _tamper("UPDATE audit_auditevent SET data = '{\"i\": 99}'::jsonb WHERE seq = 4")
    code, _, err = _verify_audit()
    assert code == 1
    assert "BROKEN at event 4" in err
    assert "changed after it was written" in err


def test_verify_audit_names_a_deleted_row():
    _append(6)
    _tamper("DELETE FROM audit_auditevent WHERE seq = 3")
    code, _, err = _verify_audit()
    assert code == 1
    assert "BROKEN at event 3" in err
    assert "missing" in err


def test_verify_audit_names_a_row_whose_link_was_rewritten():
    events = _append(5)
    forged = hashlib.sha256(b"forged").hexdigest()
    _tamper("UPDATE audit_auditevent SET prev_hash = %s WHERE seq = 5", [forged])
    code, _, err = _verify_audit()
    assert code == 1
    assert "BROKEN at event 5" in err
    assert events[3].hash != forged


def test_failed_append_leaves_no_gap():
    _append(2)
    with pytest.raises(RuntimeError), transaction.atomic():
        record(actor=Actor(type="system", id="x"), action=AuditAction.STAFF_CREATED)
        raise RuntimeError("the change this event described failed")
    event = _append(1)[0]
    assert event.seq == 3
    assert chain_verify().ok
