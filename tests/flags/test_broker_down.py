"""Flags posted while the broker cannot take tasks are stored and answered 201; grouping catches up later.

The grouping task is queued after the flags' transaction commits. Until the last stop's CI found it, a broker that
refused that publish made the ingestion raise *after* the commit: the detector got an error (a 500 through the API)
for flags that were stored, and would send them again. The reconciler groups such flags anyway
(``reconcile_pending_flags``), so the request is only a hint and a failed one is logged, never raised.

Real parts: the web's own view, in a process of its own whose broker is a TCP port nobody listens on.
"""

import json
import subprocess
import sys
import textwrap

import pytest

from flags.grouping import flags_group
from flags.models import Flag
from tests.conftest import flag_payload
from tests.reliability.brokers import free_port
from tests.support import ROOT, child_env

pytestmark = pytest.mark.django_db(transaction=True)

CLIENT = """
import json, sys
import django
django.setup()
from django.test import Client

token, body = sys.argv[1], sys.argv[2]
answer = Client().post("/api/v1/flags/", data=body, content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST="localhost")
print(json.dumps({"status": answer.status_code, "body": answer.json()}))
"""


def test_flags_posted_while_the_broker_is_down_are_stored_answered_201_and_grouped_later(detector_token):
    dead_broker = f"redis://127.0.0.1:{free_port()}/0"  # bound once to find it free, then nobody listens
    body = json.dumps({"flags": [flag_payload(n, account_id="acct_nobroker") for n in ("nb1", "nb2")]})
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(CLIENT), detector_token, body], cwd=ROOT,
                          env=child_env(CELERY_BROKER_URL=dead_broker), capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["status"] == 201, answer
    assert answer["body"]["created"] == 2, answer
    assert "grouping not queued (broker unavailable)" in done.stderr, done.stderr[-3000:]
    stored = Flag.objects.filter(external_id__in=["f-nb1", "f-nb2"])
    assert stored.count() == 2 and not stored.filter(case__isnull=False).exists()

    flags_group()  # what reconcile_pending_flags does on the next beat
    assert stored.filter(case__isnull=False).values("case").distinct().count() == 1
