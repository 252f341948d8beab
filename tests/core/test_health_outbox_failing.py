"""/healthz names the outbox when a message keeps failing long after it was queued: its peer is down.

Back-off hides that from the due-age check (between tries a message is not due), so with the reconciler retrying
every few seconds a peer down for hours read "ok". tests/reliability/test_peers_down.py sees it during an outage."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from reviewapp.core import health
from reviewapp.outbox.models import OutboxMessage
from reviewapp.outbox.services import outbox_enqueue

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_heartbeat_waiting():
    cache.delete_many([health.HEARTBEAT_QUEUED_KEY, health.HEARTBEAT_ANSWERED_KEY])


def _in_back_off(key: str, *, queued_seconds_ago: float, attempts: int) -> None:
    with transaction.atomic():
        message = outbox_enqueue(kind="enforcement", idempotency_key=key,
                                 payload={"event": "enforcement.apply", "decision_id": 1, "action": "suspend"})
    OutboxMessage.objects.filter(pk=message.pk).update(
        attempts=attempts, last_error="could not reach http://127.0.0.1:9/: Connection refused",
        created_at=timezone.now() - timedelta(seconds=queued_seconds_ago),
        next_attempt_at=timezone.now() + timedelta(seconds=30))  # in back-off: not due


def _outbox(client) -> tuple[int, str]:
    response = client.get(reverse("healthz"))
    return response.status_code, response.json()["outbox"]


def test_a_message_failing_past_the_threshold_names_the_outbox(client, settings, caplog):
    settings.HEALTH_OUTBOX_MAX_AGE_SECONDS = 300
    _in_back_off("failing-briefly", queued_seconds_ago=250, attempts=4)
    _in_back_off("never-tried", queued_seconds_ago=4000, attempts=0)  # waiting for its first try, on purpose
    assert _outbox(client) == (200, "ok")

    _in_back_off("failing-long", queued_seconds_ago=400, attempts=6)
    assert _outbox(client) == (503, "stalled")
    assert "queued 400 s ago is still failing (up to 6 attempts" in caplog.text


def test_once_delivered_it_is_ok_again(client, settings):
    settings.HEALTH_OUTBOX_MAX_AGE_SECONDS = 300
    _in_back_off("failing-long", queued_seconds_ago=400, attempts=6)
    assert _outbox(client) == (503, "stalled")
    OutboxMessage.objects.update(state=OutboxMessage.State.DELIVERED, next_attempt_at=None)
    assert _outbox(client) == (200, "ok")
