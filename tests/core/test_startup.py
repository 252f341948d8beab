"""What a process loads before its first piece of work: a backfill's start-up counts in its rate (issue 8)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from reviewapp.celery import app

from ..support import ROOT, child_env, sqla_broker_url

pytestmark = pytest.mark.django_db


def test_the_sqlalchemy_broker_polls_ten_times_a_second():
    with app.connection_for_write(sqla_broker_url()) as connection:
        assert connection.transport.polling_interval == 0.1


def test_ingest_flags_starts_without_the_web_apis_or_sqlalchemy_on_a_redis_broker(tmp_path):
    """No drf-spectacular (the URLconf loads it for a schema), no system checks (they import every view), no
    SQLAlchemy (only kombu's SQLAlchemy broker needs it)."""
    answer = subprocess.run(
        [sys.executable, "-X", "importtime", "manage.py", "ingest_flags", str(tmp_path / "missing.jsonl")],
        cwd=ROOT, env=child_env(CELERY_BROKER_URL="redis://127.0.0.1:6379/0"), capture_output=True, text=True,
        timeout=120)
    assert "no such file" in answer.stderr, answer.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in answer.stderr.splitlines()
                if line.startswith("import time:")}
    assert "django.contrib.auth.base_user" in imported  # the measure works: Django's apps were loaded
    assert not {"sqlalchemy", "drf_spectacular.openapi", "flags.openapi", "reviewapp.urls"} & imported
