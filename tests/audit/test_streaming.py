"""verify_audit streams: memory does not grow with the length of the chain."""

import tracemalloc

import pytest
from django.utils import timezone

from reviewapp.audit.chain import GENESIS_HASH, link_hash
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.selectors import chain_verify

pytestmark = pytest.mark.django_db


def _bulk_chain(start: int, n: int, prev: str) -> str:
    """Write a valid chain fast (bulk), as if record() had been called n times."""
    rows, now = [], timezone.now()
    for seq in range(start, start + n):
        fields = {"seq": seq, "created_at": now, "actor_type": "system", "actor_id": "bulk",
                  "actor_display": "bulk", "action": "staff.created", "target_type": "", "target_id": "",
                  "data": {"payload": "x" * 200, "seq": seq}}
        digest = link_hash(prev_hash=prev, fields=fields)
        rows.append(AuditEvent(**fields, prev_hash=prev, hash=digest))
        prev = digest
    AuditEvent.objects.bulk_create(rows, batch_size=2000)
    return prev


def _peak_kib(chunk: int) -> tuple[int, int]:
    tracemalloc.start()
    report = chain_verify(chunk_size=chunk)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return report.count, peak // 1024


def test_verify_memory_stays_flat_as_the_chain_grows():
    head = _bulk_chain(1, 3000, GENESIS_HASH)
    count_small, peak_small = _peak_kib(chunk=500)
    _bulk_chain(3001, 12000, head)
    count_large, peak_large = _peak_kib(chunk=500)
    assert (count_small, count_large) == (3000, 15000)
    # Five times the events; a verifier that loaded them all would need several times the memory.
    assert peak_large < peak_small * 1.5, (peak_small, peak_large)
