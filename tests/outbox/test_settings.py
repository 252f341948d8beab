"""Outbox settings: production insists on a webhook secret; make run starts local stand-ins for local peers only."""

import subprocess
import sys

import pytest
from django.test import override_settings

from reviewapp.core.stack import Stack
from tests.support import ROOT, child_env

PRODUCTION = {"DJANGO_SETTINGS_MODULE": "reviewapp.settings.production",
              "SECRET_KEY": "k" * 20 + "-production-secret-with-entropy-" + "Zq8#pL2!vR7@xM4$",
              "ALLOWED_HOSTS": "reviewapp.example"}


def _check(**env):
    return subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=child_env(**PRODUCTION, **env),
                          capture_output=True, text=True, timeout=120)


@pytest.mark.django_db
def test_production_refuses_a_webhook_url_without_its_secret():
    refused = _check(ENFORCEMENT_WEBHOOK_URL="https://platform.example/enforcement", ENFORCEMENT_WEBHOOK_SECRET="")
    assert refused.returncode != 0 and "ENFORCEMENT_WEBHOOK_SECRET must be set" in refused.stderr
    accepted = _check(ENFORCEMENT_WEBHOOK_URL="https://platform.example/enforcement",
                      ENFORCEMENT_WEBHOOK_SECRET="w" * 40)
    assert accepted.returncode == 0, accepted.stderr


def test_make_run_starts_the_receiver_and_smtp_sink_for_local_peers_only():
    with override_settings(ENFORCEMENT_WEBHOOK_URL="http://127.0.0.1:8025/enforcement", EMAIL_HOST="127.0.0.1",
                           EMAIL_PORT=1025, EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend"):
        commands = Stack(port=8000).commands()
    assert commands["receiver"][-3:] == ["run_enforcement_receiver", "--port", "8025"]
    assert commands["smtp"][-1] == "127.0.0.1:1025"
    with override_settings(ENFORCEMENT_WEBHOOK_URL="https://platform.example/enforcement", EMAIL_HOST="smtp.example"):
        commands = Stack(port=8000).commands()
    assert "receiver" not in commands and "smtp" not in commands
