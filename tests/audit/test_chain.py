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
from reviewapp.audit.services import SYSTEM, Actor, Entry, Target, record, record_many
from tests.support import sequence_audit

pytestmark = pytest.mark.django_db


def _append(n: int) -> list[AuditEvent]:
    """Record n events and sequence them, as the after-commit sequencer would."""
    events = [
        record(actor=SYSTEM, action=AuditAction.STAFF_CREATED, target=Target("people.user", str(i)),
               data={"i": i, "when": date(2026, 1, i % 28 + 1), "ref": uuid.UUID(int=i)})
        for i in range(n)
    ]
    sequence_audit()
    for event in events:
        event.refresh_from_db()
    return events


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
    assert not AuditEvent.objects.filter(actor_id="x").exists()
    event = _append(1)[0]
    assert event.seq == 3
    assert chain_verify().ok


def test_an_event_exists_at_once_and_joins_the_chain_when_sequenced():
    event = record(actor=SYSTEM, action=AuditAction.STAFF_CREATED, data={"i": 1})
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.action, stored.seq, stored.prev_hash, stored.hash) == ("staff.created", None, None, None)
    report = chain_verify()
    assert report.ok and (report.count, report.unsequenced) == (0, 1)

    assert sequence_audit() == 1
    stored.refresh_from_db()
    assert stored.seq == 1 and stored.prev_hash == GENESIS_HASH
    report = chain_verify()
    assert report.ok and (report.count, report.unsequenced, report.head_hash) == (1, 0, stored.hash)
    assert sequence_audit() == 0  # each event is sequenced once


def test_record_many_is_sequenced_in_the_order_given():
    record(actor=SYSTEM, action=AuditAction.STAFF_CREATED, data={"first": True})
    record_many([Entry(actor=SYSTEM, action=AuditAction.STAFF_CREATED, data={"i": i}) for i in range(5)])
    sequence_audit()
    chain = list(AuditEvent.objects.order_by("seq").values_list("seq", "data"))
    assert chain == [(1, {"first": True})] + [(i + 2, {"i": i}) for i in range(5)]
    assert chain_verify().ok


@pytest.mark.parametrize(("statement", "why"), [
    ("UPDATE audit_auditevent SET data = '{\"forged\": true}'::jsonb WHERE seq IS NULL", "pending content"),
    ("UPDATE audit_auditevent SET seq = 7, prev_hash = repeat('0', 64), hash = repeat('1', 64), "
     "actor_display = 'someone else' WHERE seq IS NULL", "sequencing that also edits"),
    ("UPDATE audit_auditevent SET seq = 9, prev_hash = repeat('0', 64), hash = repeat('2', 64) "
     "WHERE seq IS NOT NULL", "sequencing twice"),
    ("UPDATE audit_auditevent SET seq = NULL, prev_hash = NULL, hash = NULL WHERE seq IS NOT NULL", "unsequencing"),
    ("DELETE FROM audit_auditevent WHERE seq IS NULL", "deleting a pending event"),
])
def test_the_only_update_allowed_is_sequencing_a_pending_event_once(statement, why):
    _append(2)
    record(actor=SYSTEM, action=AuditAction.STAFF_CREATED, data={"pending": True})
    with pytest.raises(DatabaseError, match="pgtrigger: Cannot"), transaction.atomic(), connection.cursor() as cur:
        cur.execute(statement)
    assert sequence_audit() == 1, why
    report = chain_verify()
    assert report.ok and report.count == 3


def test_verify_audit_names_an_event_whose_link_was_removed():
    _append(5)
    _tamper("UPDATE audit_auditevent SET seq = NULL, prev_hash = NULL, hash = NULL WHERE seq = 2")
    code, _, err = _verify_audit()
    assert code == 1
    assert "BROKEN at event 2" in err
    assert "missing" in err


def test_verify_audit_names_an_event_moved_to_another_place():
    events = _append(5)
    # Swap the positions of events 2 and 3, keeping their stored hashes: the relinked chain breaks at 2.
    _tamper("UPDATE audit_auditevent SET seq = -seq WHERE seq IN (2, 3)")
    _tamper("UPDATE audit_auditevent SET seq = CASE seq WHEN -2 THEN 3 ELSE 2 END WHERE seq IN (-2, -3)")
    assert AuditEvent.objects.get(seq=2).pk == events[2].pk
    code, _, err = _verify_audit()
    assert code == 1
    assert "BROKEN at event 2" in err


def test_data_the_chain_cannot_hash_is_refused_in_the_writers_transaction():
    """An integer beyond RFC 8785's ±2^53 would be stored and then stop the sequencer at it, for every writer."""
    with pytest.raises(ValueError, match="RFC 8785"), transaction.atomic():
        record(actor=SYSTEM, action=AuditAction.STAFF_CREATED, target=Target("people.user", "1"),
               data={"seed": 2**63 - 2})
    assert not AuditEvent.objects.exists()
    event = record(actor=SYSTEM, action=AuditAction.STAFF_CREATED, data={"seed": 2**53 - 1, "digits": "1" * 40})
    sequence_audit()
    event.refresh_from_db()
    assert event.seq == 1 and event.data["seed"] == 2**53 - 1
    assert chain_verify().ok


# Data where json's C encoder and RFC 8785 write different bytes: a small float (1e-07, 1e-7) and a whole one, keys
# beyond the BMP and in the private-use area (UTF-16 order differs from code-point order), escapes and non-ASCII.
_ENCODINGS_DIFFER = {"whole": 2.0, "tiny": 1e-7, "\U0001f600 smile": 1, "\ue000 private": 2,
                     "text": "tab\t \"quoted\" \u2028 é \x7f", "nested": [{"b": None, "a": True}]}


def test_the_verifier_s_fast_hash_agrees_with_link_hash_on_every_kind_of_data():
    from datetime import UTC, datetime

    from reviewapp.audit.chain import link_hash, link_hash_matches

    moment = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    for data in ({"queue": "extraction", "n": 3, "next": True, "by": None, "é": "ü"}, _ENCODINGS_DIFFER, {}):
        fields = {"seq": 7, "created_at": moment, "actor_type": "user", "actor_id": "3", "actor_display": "Ana é",
                  "action": "case.claimed", "target_type": "cases.case", "target_id": "9", "data": data}
        right = link_hash(prev_hash=GENESIS_HASH, fields=fields)
        assert link_hash_matches(prev_hash=GENESIS_HASH, fields=fields, stored=right)
        assert link_hash_matches(prev_hash=GENESIS_HASH, fields=fields, stored=right,  # a wrong text: link_hash decides
                                 canonical_created_at="2026-01-02T03:04:05.000000+00:00")
        for changed in ({**fields, "data": {**data, "extra": 1}}, {**fields, "actor_id": "4"},
                        {**fields, "seq": 8}, {**fields, "created_at": moment.replace(microsecond=7)}):
            assert not link_hash_matches(prev_hash=GENESIS_HASH, fields=changed, stored=right)
        assert not link_hash_matches(prev_hash="1" * 64, fields=fields, stored=right)


def test_verify_audit_checks_data_whose_encodings_differ_and_names_it_when_changed():
    record(actor=SYSTEM, action=AuditAction.STAFF_CREATED, target=Target("people.user", "1"), data={"i": 1})
    record(actor=SYSTEM, action=AuditAction.STAFF_CREATED, target=Target("people.user", "2"), data=_ENCODINGS_DIFFER)
    sequence_audit()
    code, out, _ = _verify_audit()
    assert code == 0 and "OK: 2 events" in out
    _tamper("UPDATE audit_auditevent SET data = jsonb_set(data, '{tiny}', '1e-8') WHERE seq = 2")
    code, _, err = _verify_audit()
    assert code == 1 and "BROKEN at event 2" in err


# ── canonical_json: RFC 8785 bytes, json's C encoder where it provably writes the same ───────────────

def _outcome(encode, value):
    try:
        return encode(value)
    except Exception as error:  # the same error, type and message, is the expected outcome
        return type(error), str(error)


# Characters where encoders disagree: escapes, DEL, line separators, the private-use area (sorts after surrogate
# pairs in UTF-16), beyond the BMP, lone surrogates (neither may write them).
_AWKWARD = ["\x00", "\x1f", "\b", "\t", "\n", "\f", "\r", '"', "\\", "/", "\x7f", "\u2028", "\u00e9", "\ue000",
            "\uffff", "\U0001f600", "\U0010ffff", "\ud800", "\udfff"]
# Floats RFC 8785 writes otherwise than repr (and json) does, and some it writes alike.
_FLOATS = [1.0, -1.0, 0.0, -0.0, 1e21, 1e-7, 1e-5, 1e16, 1e20, 123456789012345680000.0, 5e-324, 1.7976931348623157e308,
           0.0001, 0.5, -3.25, 1234567890123456.8, float("inf"), float("nan")]


def _json_values():
    from hypothesis import strategies as st

    text = st.text(st.one_of(st.characters(exclude_categories=()), st.sampled_from(_AWKWARD)), max_size=6)
    scalars = st.one_of(st.none(), st.booleans(), text,
                        st.integers(), st.integers(-(2**53) - 2, 2**53 + 2), st.sampled_from([2**53 - 1, -(2**53) + 1]),
                        st.floats(), st.sampled_from(_FLOATS))
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.tuples(inner, inner),
                                                          st.dictionaries(text, inner, max_size=5)), max_leaves=25)


def test_canonical_json_is_exactly_rfc8785_on_any_value():
    """Whatever the value (floats, control characters, non-BMP keys and values, lone surrogates, big integers,
    nesting), canonical_json returns rfc8785's bytes or raises rfc8785's error."""
    from hypothesis import HealthCheck, given, settings

    from reviewapp.audit.chain import canonical_json

    @settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
    @given(value=_json_values())
    def check(value):
        assert _outcome(canonical_json, value) == _outcome(rfc8785.dumps, value)
        event = {"seq": 1, "created_at": "2026-01-02T03:04:05.000006+00:00", "data": {"v": value, "é": [value]}}
        assert _outcome(canonical_json, event) == _outcome(rfc8785.dumps, event)

    check()


@pytest.mark.parametrize("depth", [1, 31, 32, 33, 200, 5000])
def test_canonical_json_is_exactly_rfc8785_at_any_depth(depth):
    from reviewapp.audit.chain import canonical_json

    for leaf in ("x", 1.0, 0.5, {"\U0001f600": 1, "\ue000": 2}):
        nested_lists, nested_dicts = leaf, leaf
        for _ in range(depth):
            nested_lists, nested_dicts = [nested_lists], {"k": nested_dicts}
        for value in (nested_lists, nested_dicts):
            assert _outcome(canonical_json, value) == _outcome(rfc8785.dumps, value)


@pytest.mark.parametrize(("number", "canonical"), [
    # RFC 8785, appendix B, and ECMAScript's Number::toString: where json writes repr(number) instead.
    (1.0, b"1"), (-0.0, b"0"), (0.0, b"0"), (1e16, b"10000000000000000"), (1e20, b"100000000000000000000"),
    (1e-7, b"1e-7"), (1e-5, b"0.00001"), (9.999999999999997e-7, b"9.999999999999997e-7"), (5e-324, b"5e-324"),
    (295147905179352830000.0, b"295147905179352830000"), (9.999999999999997e22, b"9.999999999999997e+22"),
    (1e21, b"1e+21"), (1e23, b"1e+23"), (999999999999999900000.0, b"999999999999999900000"),
    (0.000001, b"0.000001"), (1.7976931348623157e308, b"1.7976931348623157e+308"),
])
def test_canonical_json_writes_floats_as_rfc8785_where_json_writes_them_otherwise(number, canonical):
    """Fails if the C encoder's text were taken for a float RFC 8785 writes differently (whole, tiny, large)."""
    from reviewapp.audit.chain import canonical_json

    assert canonical_json([number]) == b"[" + canonical + b"]" == rfc8785.dumps([number])
    assert canonical_json({"n": number, "s": "é"}) == b'{"n":' + canonical + b',"s":"\xc3\xa9"}'


def test_keys_beyond_the_bmp_are_sorted_by_utf16_code_units():
    from reviewapp.audit.chain import canonical_json

    # U+1F600 is D83D DE00 in UTF-16, before U+E000; by code point it comes after.
    assert canonical_json({"\ue000": 1, "\U0001f600": 2}) == '{"\U0001f600":2,"\ue000":1}'.encode()


def test_ordinary_audit_data_is_written_by_json_s_c_encoder(monkeypatch):
    """The fast path is taken for what the trail holds (else the speed-up is gone), with the same bytes."""
    from reviewapp.audit import chain

    event = {"seq": 9, "created_at": "2026-01-02T03:04:05.000006+00:00", "actor_type": "system", "actor_id": "",
             "actor_display": "Flag grouper «é»", "action": "case.opened", "target_type": "cases.case",
             "target_id": "98765", "data": {"account_id": 1234567, "flags": ["ext-1", "ext-2\n"], "score": 0.75,
                                            "campaign": "det-a:cluster-17", "by": None, "ok": True, "n": -(2**53) + 1}}
    expected = rfc8785.dumps(event)
    monkeypatch.setattr(chain.rfc8785, "dumps", lambda value: pytest.fail(f"rfc8785 used for {value!r}"))
    assert chain.canonical_json(event) == expected


def test_postgresql_writes_created_at_as_canonical_timestamp():
    """The sequencer and the verifier hash created_at as PostgreSQL writes it (CANONICAL_TIMESTAMP_SQL)."""
    from datetime import UTC, datetime, timedelta, timezone

    from reviewapp.audit.chain import CANONICAL_TIMESTAMP_SQL, canonical_timestamp

    moments = [datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), datetime(2026, 7, 1, 0, 0, 0, tzinfo=UTC),
               datetime(1, 1, 1, tzinfo=UTC), datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
               datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
               datetime(2026, 3, 29, 2, 30, 0, 120000, tzinfo=timezone(timedelta(hours=5, minutes=30)))]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL TIME ZONE 'America/St_Johns'")  # the session's zone must not matter
        for moment in moments:
            cursor.execute(f"SELECT {CANONICAL_TIMESTAMP_SQL.format(column='%s::timestamptz')}", [moment])
            assert cursor.fetchone()[0] == canonical_timestamp(moment)
