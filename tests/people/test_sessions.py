"""Every staff sign-in, sign-out and failed sign-in lands in the audit trail; sign-in is rate limited."""

import pytest
from django.core.cache import cache
from django.urls import reverse

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.people.roles import Role

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()


def _login(client, username, password):
    return client.post(reverse("people:login"), {"username": username, "password": password},
                       REMOTE_ADDR="203.0.113.7")


def test_login_is_audited_with_who_and_from_where(client, make_staff):
    user = make_staff(Role.REVIEWER, username="rhea")
    response = _login(client, "rhea", PASSWORD)
    assert response.status_code == 302 and response.url == reverse("core:home")
    event = AuditEvent.objects.get(action=AuditAction.AUTH_LOGIN)
    assert (event.actor_type, event.actor_id, event.actor_display) == ("user", str(user.pk), "rhea")
    assert event.data == {"ip": "203.0.113.7"}


def test_failed_login_is_audited_without_the_password(client, make_staff):
    make_staff(Role.REVIEWER, username="rhea")
    response = _login(client, "rhea", "wrong password guess")
    assert response.status_code == 200
    assert b"didn&#x27;t match" in response.content or b"didn't match" in response.content
    event = AuditEvent.objects.get(action=AuditAction.AUTH_LOGIN_FAILED)
    assert event.data == {"username": "rhea", "ip": "203.0.113.7", "known_user": True}
    assert "wrong password guess" not in str(event.data) + event.actor_display


def test_failed_login_for_an_unknown_name_is_audited_too(client):
    _login(client, "nobody-here", "whatever it is")
    event = AuditEvent.objects.get(action=AuditAction.AUTH_LOGIN_FAILED)
    assert event.data["known_user"] is False and event.target_type == ""


def test_logout_is_audited_and_needs_post(client, make_staff):
    make_staff(Role.REVIEWER, username="rhea")
    _login(client, "rhea", PASSWORD)
    assert client.get(reverse("people:logout")).status_code == 405
    response = client.post(reverse("people:logout"))
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action=AuditAction.AUTH_LOGOUT, actor_display="rhea").count() == 1
    assert client.get(reverse("core:home")).status_code == 302  # signed out for real


def test_login_form_is_rate_limited_per_address(client, settings):
    # Test settings allow 5 attempts a minute.
    statuses = [_login(client, "someone", f"guess number {i}").status_code for i in range(7)]
    assert statuses[:5] == [200] * 5
    assert statuses[5:] == [429, 429]
    assert b"Too many attempts" in _login(client, "someone", "again").content


def test_login_page_has_csrf_protection(make_staff):
    from django.test import Client

    make_staff(Role.REVIEWER, username="rhea")
    strict = Client(enforce_csrf_checks=True)
    response = strict.post(reverse("people:login"), {"username": "rhea", "password": PASSWORD})
    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action=AuditAction.AUTH_LOGIN).exists()
