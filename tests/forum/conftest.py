"""Forum tests: a real TAXII 2.1 hub (medallion 3.0.0 in a subprocess, two trust-group collections), the people
of four eyes, and reviewed accounts with flags to share. Every bundle a test builds is checked by the OASIS
validator (stix2-validator 3.3.2) through ``assert_valid_bundle``."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.utils import timezone
from stix2validator import ValidationOptions, validate_string

from reviewapp.people.roles import Role
from tests.support import ROOT, child_env, deliver_outbox

COLLECTIONS = list(settings.FORUM_COLLECTIONS)
FRONTIER = COLLECTIONS[0]


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ForumHub:
    """``manage.py run_forum_hub`` (medallion) as a child process on a fixed port: stop() and start() again for a
    hub that is down, then up (the memory backend starts empty each time)."""

    def __init__(self, port: int, directory: Path, log_path: Path):
        self.port, self.directory, self.log_path = port, directory, log_path
        self.process: subprocess.Popen | None = None

    @property
    def api_root(self) -> str:
        return f"http://127.0.0.1:{self.port}/forum/"

    def start(self, timeout: float = 30.0, *, seed: Path | None = None) -> ForumHub:
        """``seed``: a ``run_forum_hub --seed`` file, objects in the hub's data file from the start (as `make run`)."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "run_forum_hub", "--port", str(self.port),
             "--dir", str(self.directory), *(["--seed", str(seed)] if seed else [])],
            env=child_env(FORUM_TAXII_API_ROOT=self.api_root), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the Forum hub exited: {self.log_path.read_text()[-2000:]}")
            try:
                answer = requests.get(f"http://127.0.0.1:{self.port}/taxii2/", timeout=2,
                                      auth=(settings.FORUM_TAXII_USER, settings.FORUM_TAXII_PASSWORD),
                                      headers={"Accept": "application/taxii+json;version=2.1"})
                if answer.status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError("the Forum hub did not come up")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def objects(self, collection_id: str = FRONTIER, **filters) -> list[dict]:
        """Read back what the hub holds, through taxii2-client (every page)."""
        from reviewapp.forum import taxii
        from reviewapp.forum.trust_groups import trust_group

        return taxii.read_objects(trust_group(collection_id), **filters)

    def versions(self, stix_id: str, collection_id: str = FRONTIER) -> list[str]:
        from reviewapp.forum import taxii
        from reviewapp.forum.trust_groups import trust_group

        return taxii.collection(trust_group(collection_id)).object_versions(stix_id).get("versions", [])


@pytest.fixture
def forum_hub(request, settings, tmp_path, artifacts_dir):
    """A running hub. With the real Celery worker, on the port that worker pushes to; otherwise on a free port.
    This process's settings point at it either way."""
    if "celery_worker" in request.fixturenames:
        port = request.getfixturevalue("celery_worker").forum_port
    else:
        port = _free_port()
    hub = ForumHub(port, tmp_path / "hub", artifacts_dir / f"forum-hub-{port}.log")
    settings.FORUM_TAXII_API_ROOT = hub.api_root
    hub.start()
    yield hub
    hub.stop()


@pytest.fixture
def hub_down(request, settings, tmp_path, artifacts_dir):
    """A hub that is not running yet (``.start()`` brings it up), on the worker's port."""
    port = request.getfixturevalue("celery_worker").forum_port
    hub = ForumHub(port, tmp_path / "hub", artifacts_dir / f"forum-hub-{port}.log")
    settings.FORUM_TAXII_API_ROOT = hub.api_root
    yield hub
    hub.stop()


def deliver_forum_outbox(*, timeout: float = 60.0) -> None:
    """Deliver every Forum outbox message in this process (tests that do not run the worker): deliver_outbox."""
    deliver_outbox(kind_prefix="forum_", timeout=timeout)


def assert_valid_bundle(bundle: dict | str | bytes) -> None:
    """The OASIS validator (3.3.2), non-strict: FORUM.md — strict-types rejects custom observable types in
    patterns, and interop wrongly flags the official TLP 2.0 objects."""
    text = bundle if isinstance(bundle, str) else bundle.decode() if isinstance(bundle, bytes) else json.dumps(bundle)
    result = validate_string(text, ValidationOptions(version="2.1"))
    errors = [str(e) for r in (result if isinstance(result, list) else [result]) for e in getattr(r, "errors", [])]
    assert result.is_valid, f"stix2-validator: {errors}"


# ── reviewed accounts to share ──────────────────────────────────────────────────────────────────────────────────

_counter = itertools.count(1)


@pytest.fixture
def sharing_people(make_staff):
    return {
        "reviewer": make_staff(Role.REVIEWER, username="rita-reviewer"),
        "officer": make_staff(Role.SHARING_OFFICER, username="otto-officer"),
        "officer2": make_staff(Role.SHARING_OFFICER, username="olga-officer"),
        "compliance": make_staff(Role.COMPLIANCE_OFFICER, username="cora-compliance"),
    }


class World:
    """Accounts, cases, decisions and flags made directly (the setup, not the behaviour under test)."""

    def __init__(self, policy, detector, reviewer):
        from flags.models import FlagBatch

        self.policy, self.detector, self.reviewer = policy, detector, reviewer
        self.batch = FlagBatch.objects.create(detector=detector, source=FlagBatch.Source.API)
        self.now = timezone.now()

    def account(self, external_id: str | None = None, *, organization_id: str = "", email: str = "",
                researcher: bool = False, decided: bool = True, campaign=None, action: str = "suspend",
                flags: list[dict] | None = None):
        from reviewapp.cases.models import Account, Case, Decision

        n = next(_counter)
        account = Account.objects.create(external_id=external_id or f"acct_{n:06d}_x", organization_id=organization_id,
                                         contact_email=email, researcher_programme=researcher)
        case = Case.objects.create(account=account, campaign=campaign, queue="extraction",
                                   state=Case.State.DECIDED if decided else Case.State.IN_REVIEW,
                                   sla_due_at=self.now + timedelta(days=1))
        if decided:
            clause = self.policy["extraction"]
            decision = Decision.objects.create(
                case=case, account=account, policy_version=clause.version, action=action,
                duration_days=30 if action in {"suspend", "rate_limit"} else None, rationale="Reviewed: templated.",
                decided_by=self.reviewer,
                state=Decision.State.NO_ACTION if action == "no_violation" else Decision.State.ENFORCED)
            decision.clauses.set([clause])
        for spec in flags if flags is not None else [{}]:
            self.flag(account, case, **spec)
        return account, case

    def flag(self, account, case, *, simhash: str = "9f3c0a77e41b2d10", excerpts=("Solve step by step: {problem}",),
             requests_: int = 48_000, days: int = 2, slot_count: int = 3, received_at: datetime | None = None):
        from flags.models import Flag

        n = next(_counter)
        end = datetime(2026, 11, 20, tzinfo=UTC) + timedelta(days=n % 5)
        evidence = {"template_simhash64": simhash, "slot_count": slot_count, "excerpts": list(excerpts)}
        return Flag.objects.create(
            detector=self.detector, external_id=f"flag-{n}", detector_version="3.2.0",
            account_external_id=account.external_id, organization_id=account.organization_id,
            signal="templated_prompts", score=0.9, observed_from=end - timedelta(days=days), observed_to=end,
            request_count=requests_, cluster_id="c-1", evidence=evidence, content_hash="0" * 64, batch=self.batch,
            received_at=received_at or self.now - timedelta(minutes=5), case=case)

    def campaign(self, size: int, **account_kwargs):
        from reviewapp.cases.models import Campaign

        n = next(_counter)
        campaign = Campaign.objects.create(key=f"template-miner:c-{n}", detector_slug="template-miner",
                                           cluster_id=f"c-{n}", name=f"Cluster c-{n}")
        accounts = [self.account(campaign=campaign, organization_id=f"org_{i % 2}_{n}", **account_kwargs)[0]
                    for i in range(size)]
        return campaign, accounts


@pytest.fixture
def world(policy, detector, sharing_people):
    return World(policy, detector, sharing_people["reviewer"])
