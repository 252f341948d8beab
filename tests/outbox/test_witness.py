"""The checkpoint witness: the outbox kind sending each signed audit checkpoint, the local receiver keeping them."""

import json
import urllib.error
import urllib.request

import pytest
from django.test import override_settings

from reviewapp.outbox.handlers import DeliveryError, deliver_witness_checkpoint, handler_for, webhook_request
from reviewapp.outbox.models import OutboxMessage
from reviewapp.outbox.receiver import EnforcementReceiver

CHECKPOINT = {"seq": 12, "hash": "ab" * 32, "at": "2026-12-02T06:00:00+00:00", "signature": "cd" * 32,
              "key_id": "0123456789abcdef"}


def _message(payload=CHECKPOINT, key="audit-checkpoint-12"):
    return OutboxMessage(kind="witness", payload=payload, idempotency_key=key)


def _witness_url(server: EnforcementReceiver) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/witness/checkpoints"


def _get(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def test_a_witness_payload_is_exactly_a_checkpoint():
    validate = handler_for("witness").validate
    validate(dict(CHECKPOINT))
    for broken in ({**CHECKPOINT, "seq": "12"}, {**CHECKPOINT, "hash": ""}, {"seq": 1},
                   {**CHECKPOINT, "extra": 1}):
        with pytest.raises(ValueError):
            validate(broken)


def test_the_receiver_keeps_each_signed_checkpoint_once_and_serves_them_back(start_receiver, tmp_path):
    server = start_receiver(log_path=tmp_path / "enforcement.jsonl")
    url = _witness_url(server)
    assert _get(url) == {"checkpoints": []}
    with override_settings(AUDIT_WITNESS_URL=url, AUDIT_WITNESS_SECRET=server.secret):
        deliver_witness_checkpoint(_message())
        deliver_witness_checkpoint(_message())  # a redelivery: kept once
        second = {**CHECKPOINT, "seq": 20}
        deliver_witness_checkpoint(_message(second, key="audit-checkpoint-20"))
        with pytest.raises(DeliveryError, match="409"):  # a used key with another checkpoint is refused
            deliver_witness_checkpoint(_message({**CHECKPOINT, "hash": "ef" * 32}))
    assert _get(url) == {"checkpoints": [CHECKPOINT, second]}
    assert not (tmp_path / "enforcement.jsonl").exists()  # not applied as an enforcement action
    assert len((tmp_path / "witness-checkpoints.jsonl").read_text().splitlines()) == 2
    # A restarted receiver still has them, and still recognises the keys it kept.
    server.stop()
    again = start_receiver(log_path=tmp_path / "enforcement.jsonl")
    assert _get(_witness_url(again)) == {"checkpoints": [CHECKPOINT, second]}


def test_the_receiver_refuses_an_unsigned_or_wrongly_signed_checkpoint(start_receiver, tmp_path):
    server = start_receiver(log_path=tmp_path / "enforcement.jsonl")
    request = webhook_request(_message(), url=_witness_url(server), secret="not the secret at all, no")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 401
    assert _get(_witness_url(server)) == {"checkpoints": []}


def test_delivery_needs_a_witness_url_and_secret():
    no_url = override_settings(AUDIT_WITNESS_URL="", AUDIT_WITNESS_SECRET="s" * 40)
    with no_url, pytest.raises(DeliveryError, match="AUDIT_WITNESS_URL is not set"):
        deliver_witness_checkpoint(_message())
    no_secret = override_settings(AUDIT_WITNESS_URL="http://127.0.0.1:9/witness/checkpoints", AUDIT_WITNESS_SECRET="")
    with no_secret, pytest.raises(DeliveryError, match="AUDIT_WITNESS_SECRET is not set"):
        deliver_witness_checkpoint(_message())


@pytest.mark.django_db
def test_production_refuses_a_witness_url_without_its_secret():
    from tests.outbox.test_settings import _check

    refused = _check(AUDIT_WITNESS_URL="https://witness.example/checkpoints", AUDIT_WITNESS_SECRET="")
    assert refused.returncode != 0 and "AUDIT_WITNESS_SECRET must be set" in refused.stderr
    accepted = _check(AUDIT_WITNESS_URL="https://witness.example/checkpoints", AUDIT_WITNESS_SECRET="w" * 40)
    assert accepted.returncode == 0, accepted.stderr
