"""A worker SIGKILLed while its enforcement webhook is in flight: the platform applies every message exactly once.

Two worker nodes on the same queues (the session's and a second one, as on two machines) deliver six enforcement
messages to the real enforcement receiver, which applies each request and then holds its answer. The node holding
the first held request is SIGKILLed (its whole process group): the platform has applied that message, the worker
never heard so, and its transaction (the row lock, the attempt) dies with it. The receiver lets its answers go;
the reconciler (run as beat runs it) re-queues the message still pending, the surviving node delivers it again
under the same Idempotency-Key, and the receiver answers "already applied". The killed node is started again.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import transaction

from reviewapp.audit.models import AuditEvent
from reviewapp.audit.selectors import chain_verify
from reviewapp.outbox.models import OutboxMessage
from reviewapp.outbox.receiver import EnforcementReceiver
from reviewapp.outbox.services import outbox_enqueue
from reviewapp.outbox.tasks import reconcile_outbox
from tests.conftest import applied
from tests.support import wait_for

from .faults import FaultLog, node_connected_to, node_name

pytestmark = [pytest.mark.worker, pytest.mark.xdist_group("worker"), pytest.mark.django_db(transaction=True)]
MESSAGES = 6


class _AppliesThenHoldsTheAnswer(EnforcementReceiver):
    """Applies each request at once (its log line is written), then holds the answer until ``release`` is set."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.release = threading.Event()
        self.held: list[tuple[str, int]] = []  # (idempotency key, the client's port)
        self._client = threading.local()

    def process_request_thread(self, request, client_address):
        self._client.port = client_address[1]
        super().process_request_thread(request, client_address)

    def apply(self, *, idempotency_key: str, event: str, body: bytes):
        status = super().apply(idempotency_key=idempotency_key, event=event, body=body)
        if not self.release.is_set():
            self.held.append((idempotency_key, self._client.port))
            self.release.wait(30)
        return status


def _lockable(message_id: int) -> bool:
    with transaction.atomic():
        return OutboxMessage.objects.select_for_update(skip_locked=True).filter(pk=message_id).exists()


def test_a_worker_killed_mid_delivery_loses_nothing_and_the_platform_applies_each_once(
        celery_worker, second_node, start_receiver):
    log = FaultLog("mid-delivery")
    receiver = start_receiver(port=celery_worker.enforcement_port, cls=_AppliesThenHoldsTheAnswer)
    nodes = [celery_worker, second_node]
    keys = [f"fault-delivery-{n}" for n in range(MESSAGES)]
    with transaction.atomic():  # one decision-like transaction; the deliveries are queued when it commits
        messages = {key: outbox_enqueue(kind="enforcement", idempotency_key=key, payload={
            "event": "enforcement.apply", "decision_id": n, "account_id": f"acct_fault_{n}", "action": "suspend",
            "duration_days": 30}).pk for n, key in enumerate(keys)}

    try:
        wait_for(lambda: receiver.held, timeout=60, interval=0.02, what="a delivery in flight")
        deadline = time.monotonic() + 3  # both nodes in flight, usually; one is enough
        while len(receiver.held) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        killed_key, client_port = receiver.held[0]
        holding = node_connected_to(nodes, receiver.server_address[1], local_port=client_port)
        assert holding is not None, "no node holds the connection of the request in flight"
        in_flight = len(receiver.held)
        holding.kill()
        log.note(f"SIGKILLed {node_name(holding)} (pid {holding.process.pid}) while its delivery of {killed_key} "
                 f"was applied by the receiver and its answer held; {in_flight} request(s) in flight, "
                 f"{len(applied(receiver.log_path))} of {MESSAGES} applied")
        wait_for(lambda: _lockable(messages[killed_key]), timeout=30,
                 what="the killed worker's transaction to roll back")
        killed = OutboxMessage.objects.get(pk=messages[killed_key])
        assert (killed.state, killed.attempts) == ("pending", 0), "the dead try leaves the row as it was"
    finally:
        receiver.release.set()

    survivor = second_node if holding is celery_worker else celery_worker
    rows = OutboxMessage.objects.filter(pk__in=messages.values())
    try:
        wait_for(lambda: (reconcile_outbox.delay(), not rows.exclude(state="delivered").exists())[1], timeout=90,
                 interval=0.5, what=f"every message delivered by {node_name(survivor)} after the reconciler ran")
    finally:
        holding.start()
    log.note(f"all {MESSAGES} delivered by t={log.at():.1f}s; the killed node restarted")

    entries = [entry["idempotency_key"] for entry in applied(receiver.log_path)]
    repeats = receiver.out.getvalue().count(f"already applied key {killed_key}")
    delivered_events = {key: AuditEvent.objects.filter(action="outbox.delivered", target_type="outbox.outboxmessage",
                                                       target_id=str(pk)).count() for key, pk in messages.items()}
    log.note(f"compared: {len(entries)} applied ({len(set(entries))} distinct keys) for {MESSAGES} messages; "
             f"{repeats} redelivery of {killed_key} answered 'already applied'; outbox.delivered events "
             f"{sorted(delivered_events.values())}; attempts of {killed_key}: "
             f"{rows.get(idempotency_key=killed_key).attempts}")
    assert sorted(entries) == sorted(keys), "the platform applied every message exactly once"
    assert repeats >= 1, "the killed worker's message was delivered again under its key"
    assert set(rows.values_list("state", flat=True)) == {"delivered"}
    assert rows.get(idempotency_key=killed_key).attempts == 1  # the try that died counted nothing
    assert delivered_events == dict.fromkeys(keys, 1)
    assert chain_verify().ok
