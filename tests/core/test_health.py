"""/healthz: 200 when the database and the broker answer and work flows; 503 naming what is down or stalled."""

import json
import subprocess
import sys
import time
from datetime import timedelta

import pgtrigger
import pytest
from django.core.cache import cache
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from flags.models import Flag
from flags.services import flags_ingest
from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.services import SYSTEM, record
from reviewapp.core import health
from reviewapp.core.tasks import heartbeat
from reviewapp.outbox.models import OutboxMessage
from reviewapp.outbox.services import outbox_enqueue
from tests.conftest import flag_payload
from tests.support import ROOT, child_env

CLOSED = "127.0.0.1:9"  # discard port: nothing listens there
FLOWING = {"worker": "ok", "outbox": "ok", "grouping": "ok", "audit": "ok"}


@pytest.fixture(autouse=True)
def _no_heartbeat_waiting(db):
    cache.delete_many([health.HEARTBEAT_QUEUED_KEY, health.HEARTBEAT_ANSWERED_KEY])


def _healthz(client) -> tuple[int, dict]:
    response = client.get(reverse("healthz"))
    return response.status_code, response.json()


@pytest.mark.django_db
def test_healthy_when_database_and_broker_answer(client):
    status, body = _healthz(client)
    assert status == 200
    assert body == {"status": "ok", "database": "ok", "broker": "ok", **FLOWING}


def _healthz_in_a_process(**env) -> tuple[int, dict]:
    """Ask /healthz in a fresh process whose configuration points somewhere dead."""
    script = (
        "import django, json; django.setup();"
        "from django.test import Client;"
        "r = Client(HTTP_HOST='127.0.0.1').get('/healthz'); print(r.status_code); print(r.content.decode())"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=child_env(**env),
                            capture_output=True, text=True, timeout=60, check=True)
    status, body = result.stdout.strip().splitlines()[-2:]
    return int(status), json.loads(body)


@pytest.mark.django_db
def test_names_the_broker_when_it_is_down():
    status, body = _healthz_in_a_process(CELERY_BROKER_URL=f"redis://{CLOSED}/0")
    assert status == 503
    assert body["broker"] == "down" and body["database"] == "ok" and body["down"] == ["broker"]


@pytest.mark.django_db
def test_names_the_database_when_it_is_down():
    status, body = _healthz_in_a_process(DATABASE_URL=f"postgresql://postgres@{CLOSED}/nothing",
                                         CELERY_BROKER_URL="memory://")
    assert status == 503
    # Without the database nothing can be said about the work waiting in it.
    assert body == {"status": "unavailable", "database": "down", "broker": "ok",
                    "worker": "unknown", "outbox": "unknown", "grouping": "unknown", "audit": "unknown",
                    "down": ["database"]}


# --- the worker: a heartbeat queued by beat and not taken by any worker ------------------------------

@pytest.mark.django_db
def test_names_the_worker_when_a_heartbeat_waits_past_the_threshold(client, settings, caplog):
    settings.HEALTH_WORKER_MAX_SILENCE_SECONDS = 60
    health.heartbeat_queued()
    assert _healthz(client) == (200, {"status": "ok", "database": "ok", "broker": "ok", **FLOWING})

    cache.set(health.HEARTBEAT_QUEUED_KEY, time.time() - 61, timeout=None)  # as if queued 61 s ago
    status, body = _healthz(client)
    assert status == 503
    assert body["worker"] == "stalled" and body["down"] == ["worker"]
    assert "a heartbeat has waited 61 s for a worker (limit 60 s" in caplog.text

    heartbeat.apply()  # a worker takes it
    assert _healthz(client)[0] == 200


@pytest.mark.django_db
def test_a_later_heartbeat_does_not_hide_an_older_unanswered_one():
    cache.set(health.HEARTBEAT_QUEUED_KEY, time.time() - 500, timeout=None)
    health.heartbeat_queued()
    assert health.worker_silence_seconds() >= 500


# --- the outbox: the message that has been due the longest --------------------------------------------

def _message(key: str, *, due_seconds_ago: float) -> OutboxMessage:
    with transaction.atomic():
        message = outbox_enqueue(kind="enforcement", idempotency_key=key,
                                 payload={"event": "enforcement.apply", "decision_id": 1, "action": "suspend"})
    OutboxMessage.objects.filter(pk=message.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=due_seconds_ago),
        created_at=timezone.now() - timedelta(hours=2))
    return message


@pytest.mark.django_db
def test_names_the_outbox_when_a_due_message_waits_past_the_threshold(client, settings, caplog):
    settings.HEALTH_OUTBOX_MAX_AGE_SECONDS = 300
    _message("due-recently", due_seconds_ago=250)
    assert _healthz(client)[0] == 200

    _message("due-long-ago", due_seconds_ago=400)
    status, body = _healthz(client)
    assert status == 503
    assert body["outbox"] == "stalled" and body["down"] == ["outbox"]
    assert "an outbox message has been due for 400 s (limit 300 s)" in caplog.text


@pytest.mark.django_db
def test_a_message_in_back_off_or_delivered_is_not_a_stall(client, settings):
    settings.HEALTH_OUTBOX_MAX_AGE_SECONDS = 300
    waiting = _message("in-back-off", due_seconds_ago=-600)  # created two hours ago, next try in ten minutes
    delivered = _message("delivered", due_seconds_ago=4000)
    OutboxMessage.objects.filter(pk=delivered.pk).update(state=OutboxMessage.State.DELIVERED)
    assert OutboxMessage.objects.get(pk=waiting.pk).state == OutboxMessage.State.PENDING
    assert _healthz(client)[0] == 200


# --- grouping: the flag that has waited the longest for its case -------------------------------------

def _pending_flag(n: int, detector, *, received_seconds_ago: float) -> None:
    result = flags_ingest(items=[(0, json.dumps(flag_payload(n)).encode())], detector=detector, actor=SYSTEM)
    assert result.created == 1
    _received(seconds_ago=received_seconds_ago, external_id=f"f-{n}")


def _received(*, seconds_ago: float, **which) -> None:
    with pgtrigger.ignore("flags.Flag:flags_read_only"):  # a flag's fields never change, except here
        Flag.objects.filter(**which).update(received_at=timezone.now() - timedelta(seconds=seconds_ago))


@pytest.mark.django_db
def test_names_grouping_when_a_flag_waits_for_its_case_past_the_threshold(client, settings, detector, caplog):
    settings.HEALTH_PENDING_FLAG_MAX_AGE_SECONDS = 600
    _pending_flag(1, detector, received_seconds_ago=500)
    assert _healthz(client)[0] == 200

    _received(seconds_ago=700)
    status, body = _healthz(client)
    assert status == 503
    assert body["grouping"] == "stalled" and body["down"] == ["grouping"]
    assert "a flag has waited 700 s for its case (limit 600 s)" in caplog.text


@pytest.mark.django_db
def test_names_audit_when_an_event_waits_for_the_sequencer_past_the_threshold(client, settings, caplog):
    settings.HEALTH_AUDIT_SEQUENCE_MAX_AGE_SECONDS = 60
    # Under the db fixture nothing commits, so the sequencer never gives this event its place.
    event = record(actor=SYSTEM, action=AuditAction.AUDIT_CHECKPOINT, data={})
    assert event.seq is None
    assert _healthz(client)[0] == 200

    with pgtrigger.ignore("audit.AuditEvent:audit_append_only"):  # only to age it
        AuditEvent.objects.filter(pk=event.pk).update(created_at=timezone.now() - timedelta(seconds=90))
    status, body = _healthz(client)
    assert status == 503
    assert body["audit"] == "stalled" and body["down"] == ["audit"]
    assert "an audit event has waited 90 s for the sequencer (limit 60 s)" in caplog.text


@pytest.mark.django_db
def test_every_stalled_part_is_named(client, settings, detector):
    settings.HEALTH_WORKER_MAX_SILENCE_SECONDS = 60
    cache.set(health.HEARTBEAT_QUEUED_KEY, time.time() - 120, timeout=None)
    _message("due-long-ago", due_seconds_ago=10_000)
    _pending_flag(1, detector, received_seconds_ago=10_000)
    status, body = _healthz(client)
    assert status == 503
    assert body == {"status": "unavailable", "database": "ok", "broker": "ok", "worker": "stalled",
                    "outbox": "stalled", "grouping": "stalled", "audit": "ok",
                    "down": ["grouping", "outbox", "worker"]}


@pytest.mark.django_db
def test_healthz_stays_cheap(client, django_assert_max_num_queries):
    with django_assert_max_num_queries(5):  # SELECT 1, the heartbeat note, one indexed read each for the rest
        assert _healthz(client)[0] == 200


@pytest.mark.django_db
def test_a_new_beat_forgets_a_heartbeat_an_earlier_stack_left_waiting():
    from celery.signals import beat_init

    cache.set(health.HEARTBEAT_QUEUED_KEY, time.time() - 500, timeout=None)
    beat_init.send(sender=None)
    assert health.worker_silence_seconds() is None
