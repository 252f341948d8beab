"""The periodic checkpoint runs in a real Celery worker process, through the real broker."""

import json

import pytest
from django.test import override_settings

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.services import SYSTEM, record
from reviewapp.audit.tasks import audit_checkpoint
from tests.support import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.xdist_group("worker"), pytest.mark.django_db(transaction=True)]


def _checkpoints() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=AuditAction.AUDIT_CHECKPOINT).order_by("id"))


def test_checkpoint_task_runs_in_the_worker_and_idle_runs_add_nothing(celery_worker):
    # Each transactional test starts from an empty chain: checkpoints of an earlier test's chain would not match it.
    celery_worker.checkpoint_file.unlink(missing_ok=True)
    for i in range(3):
        record(actor=SYSTEM, action=AuditAction.STAFF_CREATED, data={"i": i})
    head = AuditEvent.objects.filter(seq__isnull=False).order_by("-seq").first()
    audit_checkpoint.delay()
    event = wait_for(lambda: next(iter(_checkpoints()), None), what="the worker to record a checkpoint")
    assert event.data["head_seq"] == head.seq
    last_line = celery_worker.checkpoint_file.read_text().splitlines()[-1]
    assert json.loads(last_line)["hash"] == head.hash

    # Beat's next runs find nothing new but the checkpoint's own event: no second checkpoint.
    wait_for(lambda: AuditEvent.objects.filter(pk=event.pk, seq__isnull=False).exists(),
             what="the checkpoint's event to be sequenced")
    with override_settings(AUDIT_CHECKPOINT_FILE=celery_worker.checkpoint_file):
        assert audit_checkpoint.apply().get() is None  # in this process, on the worker's chain and file
    audit_checkpoint.delay()
    marker = record(actor=SYSTEM, action=AuditAction.STAFF_CREATED, data={"after": "idle runs"})
    audit_checkpoint.delay()  # the chain grew: this one checkpoints again
    second = wait_for(lambda: _checkpoints()[1:] and _checkpoints()[1], what="a checkpoint after the chain grew")
    marker.refresh_from_db()
    assert second.data["head_seq"] >= marker.seq
    assert len(_checkpoints()) == 2
    assert len(celery_worker.checkpoint_file.read_text().splitlines()) == 2
