"""Several processes appending at once still make one gapless, valid chain (no fork, no lost event)."""

import itertools
import subprocess
import sys

import pytest

from reviewapp.audit.models import AuditEvent
from reviewapp.audit.selectors import chain_verify
from reviewapp.audit.sequencer import sequence_pending
from tests.audit.append_events import ROLLED_BACK_EVERY, committed_per_writer
from tests.support import ROOT, child_env

WRITERS, EACH = 4, 60


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_from_several_processes_keep_one_chain(tmp_path):
    start_flag = tmp_path / "go"
    writers = [
        subprocess.Popen([sys.executable, "-m", "tests.audit.append_events", str(EACH), str(start_flag), f"w{n}",
                          str(WRITERS)],
                         cwd=ROOT, env=child_env(), stderr=subprocess.PIPE, text=True)
        for n in range(WRITERS)
    ]
    start_flag.touch()
    for writer in writers:
        _, err = writer.communicate(timeout=180)
        # Each writer held an open transaction with an event in it until all the others had recorded one.
        assert writer.returncode == 0, err

    sequence_pending(wait=True)  # the beat backstop: whatever the writers' after-commit runs left
    expected = committed_per_writer(EACH)
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, WRITERS * expected + 1))  # every committed event sequenced, once, no gap
    per_writer = {f"w{n}": AuditEvent.objects.filter(actor_id=f"w{n}").count() for n in range(WRITERS)}
    assert per_writer == {f"w{n}": expected for n in range(WRITERS)}
    rolled_back = [i for i in range(EACH) if i % ROLLED_BACK_EVERY == 0]
    assert not AuditEvent.objects.filter(data__i__in=rolled_back).exists()  # rolled-back writes left nothing
    # Interleaved, not one writer after another: real contention.
    order = list(AuditEvent.objects.order_by("seq").values_list("actor_id", flat=True))
    switches = sum(1 for a, b in itertools.pairwise(order) if a != b)
    assert switches > WRITERS
    report = chain_verify()
    assert report.ok and report.count == WRITERS * expected and report.unsequenced == 0
