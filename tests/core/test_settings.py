"""Production settings refuse to start without SECRET_KEY, and pass `check --deploy`."""

import subprocess
import sys

import pytest

from tests.support import ROOT, child_env


def _run(args, **env):
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=child_env(**env), capture_output=True,
                          text=True, timeout=120)


@pytest.mark.django_db
def test_production_refuses_to_start_without_secret_key():
    result = _run(["manage.py", "check"], DJANGO_SETTINGS_MODULE="reviewapp.settings.production", SECRET_KEY="")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


@pytest.mark.django_db
def test_production_settings_pass_the_deploy_check():
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                  DJANGO_SETTINGS_MODULE="reviewapp.settings.production",
                  SECRET_KEY="k" * 20 + "-production-secret-with-entropy-" + "Zq8#pL2!vR7@xM4$",
                  ALLOWED_HOSTS="reviewapp.example")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.django_db
def test_a_malformed_boolean_is_named():
    result = _run(["manage.py", "check"], DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr
