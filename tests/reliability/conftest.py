"""Fixtures of the fault tests: a second Celery worker node beside the session's (two nodes on the same queues,
database and peers, as on two machines) and the Forum hub on the port the workers push to and pull from."""

from __future__ import annotations

import os

import pytest

from tests.forum.conftest import ForumHub
from tests.support import CeleryWorker


@pytest.fixture
def second_node(celery_worker, artifacts_dir):
    """Another worker process on the session's queues, database and peers' ports (a node name of its own)."""
    node = CeleryWorker(dict(celery_worker.env), artifacts_dir / f"celery-worker-second-{os.getpid()}.log",
                        name=f"second{os.getpid()}@%h").start()
    yield node
    node.stop()


@pytest.fixture
def taxii_hub(celery_worker, settings, tmp_path, artifacts_dir):
    """A real medallion hub, running, on the workers' Forum port; ``.stop()`` and ``.start()`` for an outage."""
    port = celery_worker.forum_port
    hub = ForumHub(port, tmp_path / "hub", artifacts_dir / f"forum-hub-{port}.log")
    settings.FORUM_TAXII_API_ROOT = hub.api_root
    hub.start()
    yield hub
    hub.stop()
