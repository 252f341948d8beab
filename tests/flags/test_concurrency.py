"""Two detectors' requests posting overlapping batches at the same moment create each flag once."""

import json
import threading
import urllib.request

import pytest
from django.db import connection, transaction

from flags.models import Flag
from flags.services import flags_ingest
from reviewapp.audit.services import SYSTEM
from tests.conftest import flag_payload
from tests.support import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def _post(url: str, token: str, flags: list[dict]) -> dict:
    request = urllib.request.Request(url, data=json.dumps({"flags": flags}).encode(), method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def test_overlapping_batches_at_once_create_each_flag_once(live_server, detector_token):
    # Four requests, each overlapping the next by half, in reversed orders: contention on every key.
    batches = [[flag_payload(n) for n in range(start, start + 400)] for start in (0, 200, 400, 600)]
    batches[1].reverse()
    batches[3].reverse()
    barrier, answers, errors = threading.Barrier(len(batches)), [None] * len(batches), []

    def run(i):
        barrier.wait()
        try:
            answers[i] = _post(f"{live_server.url}/api/v1/flags/", detector_token, batches[i])
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert Flag.objects.count() == 1000
    assert sum(a["created"] for a in answers) == 1000
    assert sum(a["duplicates"] for a in answers) == 1600 - 1000
    assert all(a["conflicts"] == [] and a["rejected"] == [] for a in answers)


def _ingest(detector, *flags):
    return flags_ingest(items=[(i, json.dumps(f).encode()) for i, f in enumerate(flags)], detector=detector,
                        actor=SYSTEM)


def test_a_flag_another_writer_stores_while_a_batch_is_copied_counts_as_a_duplicate(detector):
    """A batch of new flags is copied straight into the table; when another writer stores one of them after the
    check (still uncommitted then), the copy waits for it, fails on the unique key, and the batch is stored
    through the staging table instead: the rest created, that one a duplicate, nothing lost or doubled."""
    stored, release, answers, errors = threading.Event(), threading.Event(), {}, []

    def other():
        try:
            with transaction.atomic():
                answers["other"] = _ingest(detector, flag_payload(1))
                stored.set()
                release.wait(60)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    def batch():
        try:
            answers["batch"] = _ingest(detector, flag_payload(1), flag_payload(2), flag_payload(3))
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=other), threading.Thread(target=batch)]
    threads[0].start()
    assert stored.wait(60)
    threads[1].start()
    try:
        wait_for(_a_session_waits_on_a_lock, timeout=60, what="the batch's copy to wait for the other writer")
    finally:
        release.set()
        for thread in threads:
            thread.join(60)
    assert not errors, errors
    assert answers["other"].created == 1
    assert (answers["batch"].created, answers["batch"].duplicates, answers["batch"].conflicts) == (2, 1, [])
    assert Flag.objects.count() == 3


def _a_session_waits_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND wait_event_type = 'Lock' AND query LIKE 'COPY flags_flag%%'")
        return cursor.fetchone()[0] > 0
