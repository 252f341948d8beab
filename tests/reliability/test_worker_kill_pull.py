"""A worker SIGKILLed in the middle of a Forum pull: after the pull runs again every object is stored exactly once.

Two worker nodes on the same queues (the session's and a second one, as on two machines), a real medallion hub
holding one peer bundle of 300 indicators (one POST: the hub dates them all alike, and pages of 100 split them),
the beat task ``pull_inbound`` sent as beat sends it. The node that holds the connection to the hub is SIGKILLed
(its whole process group) once the first pages are stored; the other node runs the next pull; the killed node is
started again. Each page is its own transaction: the page in flight rolls back, the cursor stays at the last page
stored, and the next pull goes on from there. Measured: the cursor once stood on the page's last date, which the
next page shares, so the resumed pull skipped the rest of the bundle (loss); inbound._cursor_after is the fix.
Three hundred objects, not thousands: medallion's memory backend compares every object with every manifest entry
to filter ``added_after``, and a resumed pull over 600 took longer than the client's 10 s timeout here.
"""

from __future__ import annotations

import json

import pytest

from reviewapp.audit.models import AuditEvent
from reviewapp.audit.selectors import chain_verify
from reviewapp.forum import taxii
from reviewapp.forum.models import InboundObject, PullCursor
from reviewapp.forum.tasks import pull_inbound
from reviewapp.forum.trust_groups import trust_group
from tests.forum.conftest import FRONTIER
from tests.forum.test_inbound import OTHER_LAB, SecondLab
from tests.support import wait_for

from .faults import FaultLog, node_name, node_that_received

pytestmark = [pytest.mark.worker, pytest.mark.xdist_group("worker"), pytest.mark.django_db(transaction=True)]
INDICATORS = 300


def _pulls():
    return AuditEvent.objects.filter(action="forum.inbound_pulled", target_id=FRONTIER)


def test_a_worker_killed_mid_pull_loses_and_duplicates_no_object(celery_worker, second_node, taxii_hub):
    log = FaultLog("mid-pull")
    lab = SecondLab()
    bundle = lab.bundle([lab.indicator(f"{n:016x}") for n in range(INDICATORS)])
    status = taxii.post_bundle(trust_group(FRONTIER), json.dumps(bundle).encode())
    expected = {o["id"] for o in bundle["objects"]}
    assert status.success_count == len(expected) == INDICATORS + 2  # the indicators, the lab, the marking
    pages = list(taxii.pull(trust_group(FRONTIER), per_request=100))
    log.note(f"the hub holds {len(expected)} objects in {len(pages)} pages of 100, read back in {log.at():.1f} s")
    hub_last = pages[-1].added_last
    assert len(pages) == 4 and {p.added_last for p in pages} == {hub_last}, "one POST: one date_added"

    nodes = [celery_worker, second_node]
    task = pull_inbound.delay()  # what beat sends every FORUM_PULL_INTERVAL_SECONDS
    pulling = wait_for(lambda: node_that_received(nodes, task.id), timeout=60, what="a node to take the pull")
    wait_for(lambda: InboundObject.objects.exists(), timeout=120, interval=0.02, what="the pull's first page stored")
    pulling.kill()
    survivor = second_node if pulling is celery_worker else celery_worker
    at_kill = InboundObject.objects.count()
    cursor_at_kill = PullCursor.objects.get(collection_id=FRONTIER).added_after
    log.note(f"SIGKILLed {node_name(pulling)} (pid {pulling.process.pid}) mid-pull: "
             f"{at_kill} of {len(expected)} objects stored, {_pulls().count()} page(s) committed, "
             f"cursor {cursor_at_kill!r} (hub's last {hub_last!r})")
    assert 0 < at_kill < len(expected), "the kill must land in the middle of the pull"

    try:
        pull_inbound.delay()  # beat's next pull; the surviving node takes it
        wait_for(lambda: _pulls().filter(data__cursor=hub_last).exists(), timeout=120,
                 what="the next pull to read the collection to its end")
    finally:
        pulling.start()
    log.note(f"the next pull, on {node_name(survivor)}, read the collection to its end; the killed node restarted")

    stored = list(InboundObject.objects.filter(collection_id=FRONTIER).values_list("stix_id", flat=True))
    log.note(f"compared: {len(stored)} stored rows, {len(set(stored))} distinct ids, {len(expected)} on the hub")
    assert len(stored) == len(set(stored)) == len(expected), "every object once: none missing, none twice"
    assert set(stored) == expected
    assert cursor_at_kill < hub_last, "mid-pull, the cursor stops before the date the next page shares"
    assert PullCursor.objects.get(collection_id=FRONTIER).added_after == hub_last

    before = _pulls().count()
    pull_inbound.delay()  # and a pull after that finds nothing new
    wait_for(lambda: _pulls().count() > before, timeout=60, what="one more pull")
    assert _pulls().order_by("-id").first().data["stored"] == 0 and InboundObject.objects.count() == len(expected)
    assert InboundObject.objects.filter(stix_id=OTHER_LAB).count() == 1
    assert chain_verify().ok
