from __future__ import annotations

import io
import json
import os
import socket
import time
from pathlib import Path

import pgtrigger
import pytest
from django.conf import settings
from django.core.management import CommandError
from django.test import TransactionTestCase

from reviewapp.outbox.receiver import EnforcementReceiver
from reviewapp.people.roles import Role

from .support import ROOT, CeleryWorker, child_env

pytest_plugins = ["tests.browser"]  # Chromium for any browser test, in tests/e2e or not

ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", ROOT / "test-artifacts"))


@pytest.fixture(scope="session", autouse=True)
def _flush_may_truncate_audit():
    """Transactional tests end with a TRUNCATE of every table; the audit table refuses TRUNCATE.

    Only the test harness's own flush is let through (pgtrigger.ignore scoped to that call), so tests
    of the refusal itself still meet the trigger.
    """
    original = TransactionTestCase._fixture_teardown

    def teardown(self):
        # A real Celery worker may still be finishing a task this test queued; if PostgreSQL picks the
        # flush as the victim of a deadlock with it, flush again.
        for attempt in range(5):
            try:
                with pgtrigger.ignore("audit.AuditEvent:audit_no_truncate"):
                    return original(self)
            except CommandError as exc:
                if "deadlock" not in str(exc.__cause__ or exc) or attempt == 4:
                    raise
                time.sleep(0.2)

    TransactionTestCase._fixture_teardown = teardown
    yield
    TransactionTestCase._fixture_teardown = original


@pytest.fixture(scope="session", autouse=True)
def _broker_tables():
    """kombu's SQLAlchemy broker tables (the embedded default) exist before this session or its Celery worker
    uses the broker: left to kombu, the two xdist processes' workers create them at once and collide."""
    from reviewapp.embedded import ensure_broker_tables

    ensure_broker_tables(settings.CELERY_BROKER_URL)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker, artifacts_dir, tmp_path_factory):
    """One real Celery worker process for the session, on the test database and this session's queues."""
    from django.conf import settings

    checkpoint_file = tmp_path_factory.mktemp("audit") / "checkpoints.jsonl"
    # The outbox delivers to a receiver and an SMTP server that tests start on these ports when they want
    # a peer that is up (tests/outbox/conftest.py); short retries, so a test sees retries and a give-up.
    enforcement_port, smtp_port = _free_port(), _free_port()
    # The Forum hub (medallion) that tests/forum starts on this port when they want it up.
    forum_port = _free_port()
    with django_db_blocker.unblock():
        # Small grouping batches, so a test can kill the worker in the middle of grouping.
        env = child_env(
            AUDIT_CHECKPOINT_FILE=str(checkpoint_file), FLAGS_GROUP_BATCH_SIZE="100",
            ENFORCEMENT_WEBHOOK_URL=f"http://127.0.0.1:{enforcement_port}/enforcement",
            ENFORCEMENT_WEBHOOK_SECRET=settings.ENFORCEMENT_WEBHOOK_SECRET,
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(smtp_port),
            OUTBOX_RETRY_BASE_SECONDS="1", OUTBOX_MAX_ATTEMPTS="3",
            FORUM_TAXII_API_ROOT=f"http://127.0.0.1:{forum_port}/forum/",
        )
    worker = CeleryWorker(env, artifacts_dir / f"celery-worker-{os.getpid()}.log").start()
    worker.checkpoint_file = checkpoint_file
    worker.enforcement_port, worker.smtp_port, worker.forum_port = enforcement_port, smtp_port, forum_port
    yield worker
    worker.stop()


@pytest.fixture(autouse=True)
def _no_grouping_task_noted_by_an_earlier_test(request):
    """Ingestion queues a grouping task only when none is noted as queued (flags/tasks.py). The note lives in
    the cache table, which the test flush leaves alone, so a task an earlier test queued (and whose worker
    was then killed, or whose queue was purged) would keep this test's ingestion from queueing its own for
    a few seconds; with no beat in the tests, nothing else would group its flags."""
    if "celery_worker" in request.fixturenames:
        from django.core.cache import cache

        from flags.tasks import QUEUED_KEY

        request.getfixturevalue("db")
        cache.delete(QUEUED_KEY)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ── Real peers of the outbox: the enforcement receiver (a thread here) and an SMTP server (aiosmtpd) ──
# Delivery tests start them on the ports the session's Celery worker posts to (``celery_worker.enforcement_port``
# and ``celery_worker.smtp_port``); receiver tests use any free port.


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


@pytest.fixture
def make_staff(db):
    from reviewapp.audit.services import SYSTEM
    from reviewapp.people.services import staff_create

    def make(role: Role = Role.REVIEWER, username: str | None = None, password: str = "correct horse battery"):
        username = username or f"{role.value}-{make.counter}"
        make.counter += 1
        user, _ = staff_create(actor=SYSTEM, username=username, role=role, password=password)
        return user

    make.counter = 0
    return make


@pytest.fixture
def detector(db):
    from flags.services import detector_ensure
    from reviewapp.audit.services import SYSTEM

    return detector_ensure(actor=SYSTEM, slug="template-miner", name="Template miner", owner_team="T&S detection")


@pytest.fixture
def detector_token(detector) -> str:
    from flags.services import detector_token_create
    from reviewapp.audit.services import SYSTEM

    return detector_token_create(actor=SYSTEM, detector=detector)[1]


def flag_payload(n: int | str = 1, **overrides) -> dict:
    """A valid schema-v1 flag (``f-<n>`` for account ``acct_<n>``); override any field (tests/factories.py)."""
    from tests.factories import FlagPayloadFactory

    return FlagPayloadFactory(n=n, **overrides)


@pytest.fixture
def policy(db):
    """A small published policy version: a clause per kind of rule the review flow must respect."""
    import datetime

    from reviewapp.policy.models import Clause, Policy, PolicyVersion

    usage = Policy.objects.create(slug="test-policy", title="Test usage policy")
    version = PolicyVersion.objects.create(policy=usage, number=1, source_path="test", source_sha256="0" * 64,
                                           title="Test usage policy", effective_from=datetime.date(2026, 1, 1),
                                           text="(test)")
    common = {"version": version, "evidence_retention_days": 365, "dsa_category":
              "STATEMENT_CATEGORY_OTHER_VIOLATION_TC", "evidence_required": "Detector flags."}
    clauses = {
        "extraction": Clause.objects.create(ref="T-1", position=1, title="Automated extraction",
                                            text="Do not extract outputs at scale.", severity="high",
                                            permitted_actions=["no_violation", "warn", "rate_limit", "suspend"],
                                            **common),
        "competing": Clause.objects.create(ref="T-2", position=2, title="Competing models",
                                           text="Do not train competing models on outputs.", severity="critical",
                                           permitted_actions=["no_violation", "suspend", "terminate"],
                                           requires_second_approval=True, appeal_window_days=200, **common),
        "research": Clause.objects.create(ref="T-3", position=3, title="Researcher access",
                                          text="Good-faith research under the programme is allowed.",
                                          severity="low", permitted_actions=["no_violation", "warn"], **common),
    }
    return clauses
