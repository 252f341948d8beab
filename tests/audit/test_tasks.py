"""The periodic checkpoint runs in a real Celery worker process, through the real broker."""

import json

import pytest

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.services import SYSTEM, record
from reviewapp.audit.tasks import audit_checkpoint
from tests.support import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.xdist_group("worker"), pytest.mark.django_db(transaction=True)]


def test_checkpoint_task_runs_in_the_worker(celery_worker):
    for i in range(3):
        record(actor=SYSTEM, action=AuditAction.STAFF_CREATED, data={"i": i})
    audit_checkpoint.delay()
    event = wait_for(
        lambda: AuditEvent.objects.filter(action=AuditAction.AUDIT_CHECKPOINT).first(),
        what="the worker to record a checkpoint",
    )
    assert event.data["head_seq"] == 3
    last_line = celery_worker.checkpoint_file.read_text().splitlines()[-1]
    assert json.loads(last_line)["hash"] == AuditEvent.objects.get(seq=3).hash
