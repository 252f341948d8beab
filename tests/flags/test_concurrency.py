"""Two detectors' requests posting overlapping batches at the same moment create each flag once."""

import json
import threading
import urllib.request

import pytest

from flags.models import Flag
from tests.conftest import flag_payload

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
