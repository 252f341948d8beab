"""Sign-in limits: per client address (behind trusted proxies) and per account (django-axes), with an audited unlock."""

import pytest
from axes.models import AccessAttempt
from django.core.cache import cache
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.people.addresses import client_ip
from reviewapp.people.roles import Role

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"
LOCKED = b"paused after too many failed attempts"


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()


def _login(client, username, password, address="203.0.113.7", **headers):
    return client.post(reverse("people:login"), {"username": username, "password": password},
                       REMOTE_ADDR=address, **headers)


# ── The client address ─────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(("hops", "forwarded", "expected"), [
    (0, "198.51.100.9", "10.0.0.2"),                       # no trusted proxy: the header is the client's to forge
    (1, "198.51.100.9", "198.51.100.9"),
    (1, "6.6.6.6, 198.51.100.9", "198.51.100.9"),          # the client's own prefix is ignored
    (2, "6.6.6.6, 198.51.100.9, 10.0.0.1", "198.51.100.9"),
    (2, "198.51.100.9", "198.51.100.9"),                   # fewer entries: the leftmost was a trusted proxy's
    (1, "not-an-address", "10.0.0.2"),
    (1, "", "10.0.0.2"),
    (1, " 2001:db8::1 ", "2001:db8::1"),
])
def test_client_address_comes_from_the_trusted_proxy_hops(settings, hops, forwarded, expected):
    settings.TRUSTED_PROXY_HOPS = hops
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


def test_behind_a_proxy_one_clients_failures_do_not_lock_out_another(client, settings):
    settings.TRUSTED_PROXY_HOPS = 1
    for i in range(6):  # test settings allow 5 a minute per address
        _login(client, f"someone-{i}", "guess", address="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert _login(client, "someone", "guess", address="10.0.0.2",
                  HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 429
    assert _login(client, "other", "guess", address="10.0.0.2",
                  HTTP_X_FORWARDED_FOR="198.51.100.2").status_code == 200
    event = AuditEvent.objects.filter(action=AuditAction.AUTH_LOGIN_FAILED).latest("id")
    assert event.data["ip"] == "198.51.100.2"  # the audit trail names the client, not the proxy


def test_without_trusted_proxies_a_forged_header_does_not_dodge_the_address_limit(client, settings):
    settings.TRUSTED_PROXY_HOPS = 0
    statuses = [_login(client, f"someone-{i}", "guess", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}").status_code
                for i in range(7)]
    assert statuses[5:] == [429, 429]
    assert AuditEvent.objects.filter(action=AuditAction.AUTH_LOGIN_FAILED).latest("id").data["ip"] == "203.0.113.7"


def test_holder_link_requests_are_limited_per_client_behind_the_proxy_too(client, settings):
    settings.TRUSTED_PROXY_HOPS = 1
    settings.HOLDER_LINK_RATE_LIMIT = "2/h"
    url = reverse("appeals:start")
    for i in range(2):
        client.post(url, {"email": f"p{i}@example.com"}, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert client.post(url, {"email": "p9@example.com"}, REMOTE_ADDR="10.0.0.2",
                       HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 429
    assert client.post(url, {"email": "p8@example.com"}, REMOTE_ADDR="10.0.0.2",
                       HTTP_X_FORWARDED_FOR="198.51.100.2").status_code == 302


# ── The per-account lockout ────────────────────────────────────────────────────────────────────────


def _fail_from_many_addresses(client, username, times):
    return [_login(client, username, f"wrong guess {i}", address=f"198.51.100.{i % 10 + 1}").status_code
            for i in range(times)]


def test_failures_from_many_addresses_lock_the_account_even_against_the_right_password(client, settings,
                                                                                        make_staff):
    make_staff(Role.REVIEWER, username="rhea")
    limit = settings.AXES_FAILURE_LIMIT
    statuses = _fail_from_many_addresses(client, "rhea", limit + 5)
    assert statuses[:limit - 1] == [200] * (limit - 1)
    assert set(statuses[limit:]) == {429}
    response = _login(client, "rhea", PASSWORD, address="192.0.2.50")
    assert response.status_code == 429 and LOCKED in response.content
    assert not AuditEvent.objects.filter(action=AuditAction.AUTH_LOGIN).exists()
    # Every refused attempt, the right password included, is still a failed sign-in in the audit trail.
    assert AuditEvent.objects.filter(action=AuditAction.AUTH_LOGIN_FAILED).count() == limit + 6
    assert "_auth_user_id" not in client.session


def test_a_lockout_does_not_tell_whether_the_username_exists(client, settings, make_staff):
    make_staff(Role.REVIEWER, username="rhea")
    limit = settings.AXES_FAILURE_LIMIT
    real = _fail_from_many_addresses(client, "rhea", limit + 1)
    cache.clear()
    invented = _fail_from_many_addresses(client, "nobody-by-this-name", limit + 1)
    assert real == invented
    real_page = _login(client, "rhea", "x", address="192.0.2.60")
    invented_page = _login(client, "nobody-by-this-name", "x", address="192.0.2.61")
    assert real_page.status_code == invented_page.status_code == 429
    strip = lambda page, name: page.content.decode().replace(name, "NAME")  # noqa: E731
    assert strip(real_page, "rhea").split('name="csrfmiddlewaretoken"')[0] == \
        strip(invented_page, "nobody-by-this-name").split('name="csrfmiddlewaretoken"')[0]


def test_other_usernames_still_sign_in_while_one_is_locked(client, settings, make_staff):
    make_staff(Role.REVIEWER, username="rhea")
    make_staff(Role.REVIEWER, username="sam")
    _fail_from_many_addresses(client, "rhea", settings.AXES_FAILURE_LIMIT)
    assert _login(client, "sam", PASSWORD, address="192.0.2.70").status_code == 302


def test_an_admin_unlocks_on_the_staff_page_audited(client, settings, make_staff):
    rhea = make_staff(Role.REVIEWER, username="rhea")
    admin = make_staff(Role.ADMIN, username="ada")
    _fail_from_many_addresses(client, "rhea", settings.AXES_FAILURE_LIMIT)
    _fail_from_many_addresses(client, "ghost", settings.AXES_FAILURE_LIMIT)
    client.force_login(admin)
    page = client.get(reverse("people:staff"))
    assert b"Unlock rhea" in page.content and b"Unlock ghost" in page.content
    assert b"(no such staff member)" in page.content
    response = client.post(reverse("people:staff-unlock"), {"username": "rhea"}, follow=True)
    assert b"Sign-in for rhea is unlocked" in response.content and b"Unlock rhea" not in response.content
    event = AuditEvent.objects.get(action=AuditAction.STAFF_SIGN_IN_UNLOCKED)
    assert event.actor_id == str(admin.pk) and event.target_id == str(rhea.pk)
    assert event.data == {"username": "rhea", "failed_attempts_cleared": settings.AXES_FAILURE_LIMIT}
    client.post(reverse("people:logout"))
    assert _login(client, "rhea", PASSWORD, address="192.0.2.80").status_code == 302


def test_only_admins_unlock(client, settings, make_staff):
    make_staff(Role.REVIEWER, username="rhea")
    _fail_from_many_addresses(client, "rhea", settings.AXES_FAILURE_LIMIT)
    client.force_login(make_staff(Role.COMPLIANCE_OFFICER))
    assert b"Unlock rhea" not in client.get(reverse("people:staff")).content
    assert client.post(reverse("people:staff-unlock"), {"username": "rhea"}).status_code == 403
    assert not AuditEvent.objects.filter(action=AuditAction.STAFF_SIGN_IN_UNLOCKED).exists()


def test_the_lockout_expires_after_the_cool_off(client, settings, make_staff):
    make_staff(Role.REVIEWER, username="rhea")
    _fail_from_many_addresses(client, "rhea", settings.AXES_FAILURE_LIMIT)
    assert _login(client, "rhea", PASSWORD, address="192.0.2.90").status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timezone.timedelta(
        seconds=1))
    assert _login(client, "rhea", PASSWORD, address="192.0.2.91").status_code == 302
