"""The webhook's wire format and the local receiver: what a platform must verify, and that it applies a key once."""

import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import rfc8785
from django.test import override_settings

from reviewapp.outbox import signing
from reviewapp.outbox.handlers import DeliveryError, deliver_enforcement, webhook_request
from reviewapp.outbox.models import OutboxMessage

from .conftest import applied

SECRET = "s" * 40
PAYLOAD = {"event": "enforcement.apply", "account_id": "acct_7", "action": "suspend", "duration_days": 30,
           "note": "Überprüfung — ✓"}


def _post(url: str, *, payload=PAYLOAD, key="decision-7-apply", secret=SECRET, timestamp=None, body=None):
    message = OutboxMessage(kind="enforcement", payload=payload, idempotency_key=key)
    request = webhook_request(message, url=url, secret=secret, timestamp=timestamp)
    if body is not None:
        request.data = body
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _url(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/enforcement"


def test_the_body_is_canonical_json_so_a_retry_sends_the_same_bytes():
    shuffled = dict(reversed(list(PAYLOAD.items())))
    assert signing.webhook_body(PAYLOAD) == signing.webhook_body(shuffled)
    assert json.loads(signing.webhook_body(PAYLOAD)) == PAYLOAD
    assert signing.webhook_body({"b": 1, "a": [1.5, "é"]}) == '{"a":[1.5,"é"],"b":1}'.encode()
    # RFC 8785 where json's own text differs: a whole float, an exponent (the reference implementation agrees).
    odd = {"whole": 2.0, "tiny": 1e-07, "big": 1e21}
    assert signing.webhook_body(odd) == b'{"big":1e+21,"tiny":1e-7,"whole":2}' == rfc8785.dumps(odd)
    assert signing.webhook_body(PAYLOAD) == rfc8785.dumps(PAYLOAD)


def test_the_request_carries_the_key_the_event_and_a_signature_over_timestamp_key_and_body():
    message = OutboxMessage(kind="enforcement", payload=PAYLOAD, idempotency_key="decision-7-apply")
    request = webhook_request(message, url="http://platform.example/enforcement", secret=SECRET,
                              timestamp=1_800_000_000)
    headers = {name.lower(): value for name, value in request.header_items()}
    assert request.get_method() == "POST" and request.data == signing.webhook_body(PAYLOAD)
    assert headers["content-type"] == "application/json"
    assert headers["idempotency-key"] == "decision-7-apply"
    assert headers["x-reviewapp-event"] == "enforcement.apply"
    assert headers["x-reviewapp-timestamp"] == "1800000000"
    # What the README tells a platform to compute:
    expected = hmac.new(SECRET.encode(), b"1800000000.decision-7-apply." + request.data, hashlib.sha256).hexdigest()
    assert headers["x-reviewapp-signature"] == f"sha256={expected}"
    without_event = OutboxMessage(kind="enforcement", payload={"account_id": "a"}, idempotency_key="k")
    request = webhook_request(without_event, url="http://p/", secret=SECRET)
    assert request.get_header("X-reviewapp-event") == "enforcement"


def test_verify_names_what_is_wrong():
    body = signing.webhook_body(PAYLOAD)
    now = 1_800_000_000
    good = signing.sign(secret=SECRET, timestamp=now, idempotency_key="k", body=body)
    check = {"secret": SECRET, "signature": good, "timestamp": str(now), "idempotency_key": "k", "body": body,
             "now": now}
    assert signing.verify(**check) == ""
    assert signing.verify(**{**check, "body": body + b" "}) == "signature does not match"
    assert signing.verify(**{**check, "idempotency_key": "another"}) == "signature does not match"
    assert signing.verify(**{**check, "secret": "other"}) == "signature does not match"
    assert signing.verify(**{**check, "now": now + 301}) == "timestamp outside the tolerance"
    assert signing.verify(**{**check, "timestamp": "soon"}) == "malformed timestamp"
    assert signing.verify(**{**check, "signature": ""}) == "missing signature or timestamp"


def test_the_receiver_applies_a_key_once_and_refuses_bad_signatures(start_receiver, tmp_path):
    log = tmp_path / "received.jsonl"
    server = start_receiver(secret=SECRET, log_path=log)
    url = _url(server)

    assert _post(url) == (200, {"status": 200, "message": "applied"})
    assert _post(url) == (200, {"status": 200, "message": "applied"})  # a redelivery: answered, not applied again
    status, answer = _post(url, payload={**PAYLOAD, "action": "terminate"})
    assert status == 409 and "different body" in answer["message"]
    assert _post(url, secret="not-the-shared-secret", key="other")[0] == 401
    assert _post(url, key="stale", timestamp=int(time.time()) - 3600)[0] == 401
    assert _post(url, key="tampered", body=signing.webhook_body({**PAYLOAD, "action": "warn"}))[0] == 401

    entries = applied(log)
    assert [entry["idempotency_key"] for entry in entries] == ["decision-7-apply"]
    assert entries[0]["payload"] == PAYLOAD and entries[0]["event"] == "enforcement.apply"
    assert entries[0]["body_sha256"] == hashlib.sha256(signing.webhook_body(PAYLOAD)).hexdigest()
    printed = server.out.getvalue()
    assert "applied enforcement.apply account_id=acct_7 action=suspend" in printed
    assert "refused a request: signature does not match" in printed


def test_a_restarted_receiver_still_recognises_what_it_applied(start_receiver, tmp_path):
    log = tmp_path / "received.jsonl"
    first = start_receiver(secret=SECRET, log_path=log)
    assert _post(_url(first))[0] == 200
    first.stop()
    second = start_receiver(secret=SECRET, log_path=log)
    assert _post(_url(second))[0] == 200
    assert len(applied(log)) == 1


class _Redirecting(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(302)
        self.send_header("Location", "/elsewhere")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):  # what urllib would follow the POST with, without its body
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format, *args):
        pass


def test_a_redirect_is_not_an_acceptance():
    server = HTTPServer(("127.0.0.1", 0), _Redirecting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        message = OutboxMessage(kind="enforcement", payload=PAYLOAD, idempotency_key="k")
        with override_settings(ENFORCEMENT_WEBHOOK_URL=f"http://127.0.0.1:{server.server_address[1]}/",
                               ENFORCEMENT_WEBHOOK_SECRET=SECRET), pytest.raises(DeliveryError, match="HTTP 302"):
            deliver_enforcement(message)
    finally:
        server.shutdown()
        server.server_close()


def test_no_url_or_no_secret_is_a_delivery_failure_not_a_crash():
    message = OutboxMessage(kind="enforcement", payload=PAYLOAD, idempotency_key="k")
    with override_settings(ENFORCEMENT_WEBHOOK_URL=""), pytest.raises(DeliveryError, match="URL is not set"):
        deliver_enforcement(message)
    with override_settings(ENFORCEMENT_WEBHOOK_URL="http://127.0.0.1:9/", ENFORCEMENT_WEBHOOK_SECRET=""), \
            pytest.raises(DeliveryError, match="SECRET is not set"):
        deliver_enforcement(message)
