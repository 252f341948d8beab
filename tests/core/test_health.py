"""/healthz: 200 when the database and the broker answer; 503 naming what is down."""

import json
import subprocess
import sys

import pytest
from django.urls import reverse

from tests.support import ROOT, child_env

CLOSED = "127.0.0.1:9"  # discard port: nothing listens there


@pytest.mark.django_db
def test_healthy_when_database_and_broker_answer(client):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def _healthz_in_a_process(**env) -> tuple[int, dict]:
    """Ask /healthz in a fresh process whose configuration points somewhere dead."""
    script = (
        "import django, json; django.setup();"
        "from django.test import Client;"
        "r = Client(HTTP_HOST='127.0.0.1').get('/healthz'); print(r.status_code); print(r.content.decode())"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=child_env(**env),
                            capture_output=True, text=True, timeout=60, check=True)
    status, body = result.stdout.strip().splitlines()[-2:]
    return int(status), json.loads(body)


@pytest.mark.django_db
def test_names_the_broker_when_it_is_down():
    status, body = _healthz_in_a_process(CELERY_BROKER_URL=f"redis://{CLOSED}/0")
    assert status == 503
    assert body["broker"] == "down" and body["database"] == "ok" and body["down"] == ["broker"]


@pytest.mark.django_db
def test_names_the_database_when_it_is_down():
    status, body = _healthz_in_a_process(DATABASE_URL=f"postgresql://postgres@{CLOSED}/nothing",
                                         CELERY_BROKER_URL="memory://")
    assert status == 503
    assert body == {"status": "unavailable", "database": "down", "broker": "ok", "down": ["database"]}
