"""The audit table's indexes: each is written twice per event (insert, then the sequencer's update), so only
those a query needs (docs/audit-indexes.md names the query of each)."""

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db

_DOCUMENTED = {
    "audit_auditevent_pkey": "(id)",
    "audit_auditevent_seq_key": "(seq)",
    "audit_unsequenced_idx": "(created_at, id) WHERE (seq IS NULL)",
    "audit_target_idx": "(target_type, target_id)",
    "audit_actor_idx": "(actor_type, actor_id)",
    "audit_created_idx": "(created_at)",
    "audit_action_idx": "(action)",
}


def test_audit_events_have_exactly_the_documented_indexes():
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'audit_auditevent'")
        found = {name: definition.split(" USING btree ", 1)[1] for name, definition in cursor.fetchall()}
    assert found == _DOCUMENTED
    with connection.cursor() as cursor:  # seq stays unique: one event per place in the chain (invariant 1)
        cursor.execute("SELECT indisunique FROM pg_index WHERE indexrelid = 'audit_auditevent_seq_key'::regclass")
        assert cursor.fetchone() == (True,)
