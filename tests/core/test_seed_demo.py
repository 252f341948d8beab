"""`manage.py seed_demo`: one login per role, then the demo campaign's summary; idempotent; demo mode only."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from reviewapp.audit.models import AuditEvent
from reviewapp.cases.models import Account, Campaign, Case
from reviewapp.people.roles import Role
from reviewapp.people.selectors import role_of

pytestmark = pytest.mark.django_db
User = get_user_model()


def test_seed_demo_gives_one_login_per_role_then_the_campaign_and_is_idempotent(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.DEMO_MODE = True
    first, second = io.StringIO(), io.StringIO()
    call_command("seed_demo", stdout=first)
    events = AuditEvent.objects.count()
    call_command("seed_demo", stdout=second)
    assert first.getvalue() == second.getvalue()
    assert AuditEvent.objects.count() == events

    *logins, summary = first.getvalue().strip().splitlines()
    assert len(logins) == len(Role)
    for line in logins:
        username, password = line.split()[-2:]
        assert User.objects.get(username=username).check_password(password)
    assert {role_of(u) for u in User.objects.all()} == set(Role)

    assert summary.startswith("Demo data: ")
    assert f"{Account.objects.count()} flagged accounts" in summary
    assert f"{Case.objects.count()} cases" in summary
    assert f"{Campaign.objects.count()} campaigns" in summary
    assert Campaign.objects.count() >= 2


def test_seed_demo_refuses_outside_demo_mode(settings):
    settings.DEMO_MODE = False
    settings.DEBUG = False
    with pytest.raises(CommandError, match="demo mode"):
        call_command("seed_demo", stdout=io.StringIO())
    assert not Account.objects.exists() and not User.objects.exists()
