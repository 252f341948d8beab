"""A local enforcement endpoint standing in for the platform (the demo, and the tests' real peer).

It does what a platform's endpoint must do with our webhooks: verify the signature and timestamp
(401 otherwise), apply each Idempotency-Key once (a repeated key answers 200 without applying again;
the same key with a different body answers 409), and answer 2xx only once the action is recorded.
"Applying" here means appending one JSON line to a log and printing one line. The keys seen are
reloaded from that log at start, so a restarted receiver still recognises a redelivery.

It is also the demo's **checkpoint witness**: ``POST /witness/checkpoints`` (signed the same way) keeps
a copy of each signed audit checkpoint, once per Idempotency-Key, appended to
``witness-checkpoints.jsonl`` beside the log; ``GET /witness/checkpoints`` answers them all as JSON
(``{"checkpoints": [...]}``), which ``verify_audit --witness`` compares with the chain.

Standard library only (``http.server``): ``manage.py run_enforcement_receiver`` serves it.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

from . import signing

MAX_BODY_BYTES = 1024 * 1024
WITNESS_PATH = "/witness/checkpoints"


class EnforcementReceiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], *, secret: str, log_path: Path, out: TextIO | None = None,
                 tolerance: int = signing.DEFAULT_TOLERANCE_SECONDS, witness_path: Path | None = None):
        if not secret:
            raise ValueError("the receiver needs the webhook secret to verify signatures")
        self.secret = secret
        self.log_path = Path(log_path)
        self.witness_path = Path(witness_path) if witness_path else self.log_path.parent / "witness-checkpoints.jsonl"
        self.out = out if out is not None else sys.stdout
        self.tolerance = tolerance
        self._lock = threading.Lock()
        self._applied: dict[str, str] = self._load_applied(self.log_path)  # idempotency key -> body sha256
        self._witnessed: dict[str, str] = self._load_applied(self.witness_path)
        self._thread: threading.Thread | None = None
        super().__init__(address, _Handler)

    @staticmethod
    def _load_applied(path: Path) -> dict[str, str]:
        applied: dict[str, str] = {}
        if path.exists():
            with open(path, encoding="utf-8") as log:
                for line in log:
                    if line.strip():
                        entry = json.loads(line)
                        applied[entry["idempotency_key"]] = entry["body_sha256"]
        return applied

    def apply(self, *, idempotency_key: str, event: str, body: bytes) -> HTTPStatus:
        """Record the action once per key: 200 for a new or repeated key, 409 for a key reused with other content."""
        digest = hashlib.sha256(body).hexdigest()
        with self._lock:
            seen = self._applied.get(idempotency_key)
            if seen is not None:
                duplicate = seen == digest
                print(f"enforcement receiver: {'already applied' if duplicate else 'REFUSED, other content under'} "
                      f"key {idempotency_key}", file=self.out, flush=True)
                return HTTPStatus.OK if duplicate else HTTPStatus.CONFLICT
            payload = json.loads(body)
            entry = {"received_at": datetime.now(UTC).isoformat(), "idempotency_key": idempotency_key,
                     "event": event, "body_sha256": digest, "payload": payload}
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "a", encoding="utf-8") as log:
                log.write(json.dumps(entry, sort_keys=True) + "\n")
            self._applied[idempotency_key] = digest
        print(f"enforcement receiver: applied {event} {_summary(payload)} (key {idempotency_key})",
              file=self.out, flush=True)
        return HTTPStatus.OK

    def keep_checkpoint(self, *, idempotency_key: str, body: bytes) -> HTTPStatus:
        """Keep a copy of one audit checkpoint, once per key (409 for a key reused with other content)."""
        digest = hashlib.sha256(body).hexdigest()
        with self._lock:
            seen = self._witnessed.get(idempotency_key)
            if seen is not None:
                return HTTPStatus.OK if seen == digest else HTTPStatus.CONFLICT
            checkpoint = json.loads(body)
            entry = {"received_at": datetime.now(UTC).isoformat(), "idempotency_key": idempotency_key,
                     "body_sha256": digest, "checkpoint": checkpoint}
            self.witness_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.witness_path, "a", encoding="utf-8") as log:
                log.write(json.dumps(entry, sort_keys=True) + "\n")
            self._witnessed[idempotency_key] = digest
        seq = checkpoint.get("seq") if isinstance(checkpoint, dict) else None
        print(f"checkpoint witness: kept audit checkpoint seq {seq} (key {idempotency_key})", file=self.out, flush=True)
        return HTTPStatus.OK

    def witnessed_checkpoints(self) -> list:
        """Every checkpoint kept, in the order received."""
        with self._lock:
            if not self.witness_path.exists():
                return []
            with open(self.witness_path, encoding="utf-8") as log:
                return [json.loads(line)["checkpoint"] for line in log if line.strip()]

    def serve_in_thread(self) -> EnforcementReceiver:
        self._thread = threading.Thread(target=self.serve_forever, name="enforcement-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join(5)
            self._thread = None
        self.server_close()


def _summary(payload) -> str:
    if not isinstance(payload, dict):
        return ""
    fields = ("account_id", "action", "decision_id", "duration_days", "ends_at")
    parts = [f"{name}={payload[name]}" for name in fields if payload.get(name) not in (None, "")]
    return " ".join(parts) or json.dumps(payload, sort_keys=True)[:160]


class _Handler(BaseHTTPRequestHandler):
    server: EnforcementReceiver
    server_version = "reviewapp-enforcement-receiver/1"

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return self._answer(HTTPStatus.BAD_REQUEST, "malformed Content-Length")
        if length > MAX_BODY_BYTES:
            return self._answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large")
        body = self.rfile.read(length)
        key = self.headers.get("Idempotency-Key", "")
        reason = signing.verify(
            secret=self.server.secret,
            signature=self.headers.get("X-Reviewapp-Signature", ""),
            timestamp=self.headers.get("X-Reviewapp-Timestamp", ""),
            idempotency_key=key,
            body=body,
            tolerance=self.server.tolerance,
        )
        if reason:
            print(f"enforcement receiver: refused a request: {reason}", file=self.server.out, flush=True)
            return self._answer(HTTPStatus.UNAUTHORIZED, reason)
        if not key:
            return self._answer(HTTPStatus.BAD_REQUEST, "Idempotency-Key is required")
        try:
            json.loads(body)
        except ValueError:
            return self._answer(HTTPStatus.BAD_REQUEST, "the body is not JSON")
        if self._path() == WITNESS_PATH:
            status = self.server.keep_checkpoint(idempotency_key=key, body=body)
            if status == HTTPStatus.CONFLICT:
                return self._answer(status, "this Idempotency-Key was used with a different checkpoint")
            return self._answer(status, "kept")
        status = self.server.apply(idempotency_key=key, event=self.headers.get("X-Reviewapp-Event", ""), body=body)
        if status == HTTPStatus.CONFLICT:
            return self._answer(status, "this Idempotency-Key was used with a different body")
        return self._answer(status, "applied")

    def do_GET(self) -> None:
        if self._path() != WITNESS_PATH:
            return self._answer(HTTPStatus.NOT_FOUND, "not found")
        self._send_json(HTTPStatus.OK, {"checkpoints": self.server.witnessed_checkpoints()})

    def _path(self) -> str:
        return urlsplit(self.path).path.rstrip("/")

    def _answer(self, status: HTTPStatus, message: str) -> None:
        self._send_json(status, {"status": status.value, "message": message})

    def _send_json(self, status: HTTPStatus, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args) -> None:
        # One line per applied action is printed by apply(); no access log on top.
        pass
