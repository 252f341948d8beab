"""Real peers for outbox tests: the enforcement receiver (a thread here) and an SMTP server (aiosmtpd).

Delivery tests start them on the ports the session's Celery worker posts to (``celery_worker.enforcement_port``
and ``celery_worker.smtp_port``, see tests/conftest.py); receiver tests use any free port.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.conf import settings

from reviewapp.outbox.receiver import EnforcementReceiver


def applied(log_path: Path) -> list[dict]:
    """What the receiver applied, in order (one JSON line each)."""
    if not Path(log_path).exists():
        return []
    return [json.loads(line) for line in Path(log_path).read_text().splitlines() if line.strip()]


@pytest.fixture
def start_receiver(tmp_path):
    """Start an enforcement receiver in a thread: start_receiver(port=0, secret=None, log_path=None, cls=...)."""
    servers: list[EnforcementReceiver] = []

    def start(*, port: int = 0, secret: str | None = None, log_path: Path | None = None,
              cls: type[EnforcementReceiver] = EnforcementReceiver) -> EnforcementReceiver:
        server = cls(("127.0.0.1", port), secret=secret or settings.ENFORCEMENT_WEBHOOK_SECRET,
                     log_path=log_path or tmp_path / "enforcement-received.jsonl", out=io.StringIO())
        servers.append(server)
        return server.serve_in_thread()

    yield start
    for server in servers:
        server.stop()


class _CollectingHandler:
    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server(celery_worker):
    """A real SMTP server on the port the worker sends email to; ``.envelopes`` holds what it received."""
    from aiosmtpd.controller import Controller

    handler = _CollectingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=celery_worker.smtp_port)
    controller.start()
    yield handler
    controller.stop()
