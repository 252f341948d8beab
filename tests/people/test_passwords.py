"""One-time passwords (create_staff, the staff page) must be changed at first sign-in; staff change their own."""

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.people.roles import Role

pytestmark = pytest.mark.django_db
User = get_user_model()
PASSWORD = "correct horse battery"
NEW_PASSWORD = "plum orchard lantern 42"


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    from django.core.cache import cache

    cache.clear()


def _login(client, username, password):
    return client.post(reverse("people:login"), {"username": username, "password": password})


def _one_time_password_from_command(username="nadia", *args):
    out = io.StringIO()
    call_command("create_staff", username, "--role", "reviewer", *args, stdout=out)
    return out.getvalue().strip().splitlines()[-1].removeprefix("One-time password: ")


def test_one_time_password_from_create_staff_leads_only_to_the_change_page(client):
    password = _one_time_password_from_command()
    assert _login(client, "nadia", password).status_code == 302
    for name in ("core:home", "people:staff", "review:queues", "audit:events"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and response.url == reverse("people:password-change"), name
    assert client.get("/api/v1/cases/").status_code == 403
    page = client.get(reverse("people:password-change"))
    assert page.status_code == 200 and b"one-time password" in page.content
    assert b"Current password" not in page.content  # the one-time password was just typed at sign-in
    nav = [item["label"] for item in page.context["nav_items"]]
    assert nav == ["Change password"]


def test_forced_change_then_home_and_the_one_time_password_no_longer_works(client):
    password = _one_time_password_from_command()
    _login(client, "nadia", password)
    response = client.post(reverse("people:password-change"),
                           {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert response.status_code == 302 and response.url == reverse("core:home")
    assert client.get(reverse("core:home")).status_code == 200  # still signed in, free to go anywhere
    user = User.objects.get(username="nadia")
    assert not user.must_change_password
    event = AuditEvent.objects.get(action=AuditAction.STAFF_PASSWORD_CHANGED)
    assert (event.actor_id, event.target_id) == (str(user.pk), str(user.pk))
    assert event.data == {"username": "nadia", "forced": True}
    client.post(reverse("people:logout"))
    assert _login(client, "nadia", password).status_code == 200  # refused: the form again
    assert _login(client, "nadia", NEW_PASSWORD).status_code == 302


def test_create_staff_with_a_given_password_must_change_it_too(client):
    password = _one_time_password_from_command("omar", "--password", "given by the operator 7")
    assert password == "given by the operator 7"
    _login(client, "omar", password)
    assert client.get(reverse("core:home")).url == reverse("people:password-change")


def test_issuing_a_one_time_password_is_audited_without_the_password():
    password = _one_time_password_from_command()
    event = AuditEvent.objects.get(action=AuditAction.STAFF_PASSWORD_ISSUED)
    assert event.data == {"username": "nadia"} and event.actor_id == "manage.py create_staff"
    assert password not in str(event.data) + event.actor_display


def test_forced_change_refuses_weak_mismatched_and_unchanged_passwords(client):
    password = _one_time_password_from_command()
    _login(client, "nadia", password)
    url = reverse("people:password-change")
    weak = client.post(url, {"new_password1": "short", "new_password2": "short"})
    assert weak.status_code == 422 and b"too short" in weak.content
    mismatch = client.post(url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD + "x"})
    assert mismatch.status_code == 422 and b"didn" in mismatch.content
    same = client.post(url, {"new_password1": password, "new_password2": password})
    assert same.status_code == 422 and b"different from your current one" in same.content
    assert User.objects.get(username="nadia").must_change_password
    assert not AuditEvent.objects.filter(action=AuditAction.STAFF_PASSWORD_CHANGED).exists()


def test_staff_change_their_own_password_with_the_current_one(client, make_staff):
    user = make_staff(Role.REVIEWER, username="rhea")
    _login(client, "rhea", PASSWORD)
    url = reverse("people:password-change")
    page = client.get(url)
    assert page.status_code == 200 and b"Current password" in page.content
    wrong = client.post(url, {"old_password": "not it at all", "new_password1": NEW_PASSWORD,
                              "new_password2": NEW_PASSWORD})
    assert wrong.status_code == 422 and b"entered incorrectly" in wrong.content
    missing = client.post(url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert missing.status_code == 422
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    ok = client.post(url, {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert ok.status_code == 302
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert AuditEvent.objects.get(action=AuditAction.STAFF_PASSWORD_CHANGED).data == {"username": "rhea",
                                                                                       "forced": False}


def test_change_password_is_in_every_staff_members_navigation(client, make_staff):
    client.force_login(make_staff(Role.COMPLIANCE_OFFICER))
    page = client.get(reverse("core:home"))
    assert {"label": "Change password", "url": reverse("people:password-change"), "shortcut": ""} in \
        page.context["nav_items"]


def test_change_password_needs_sign_in(client):
    response = client.get(reverse("people:password-change"))
    assert response.status_code == 302 and response.url.startswith(reverse("people:login"))


def test_staff_page_one_time_password_must_be_changed(client, make_staff):
    admin = make_staff(Role.ADMIN)
    client.force_login(admin)
    response = client.post(reverse("people:staff-create"), {"username": "kofi", "role": "reviewer"}, follow=True)
    password = re.search(r"one-time password: (\S+)", response.content.decode()).group(1)
    assert User.objects.get(username="kofi").must_change_password
    client.post(reverse("people:logout"))
    _login(client, "kofi", password)
    assert client.get(reverse("core:home")).url == reverse("people:password-change")


def test_admin_issues_a_new_one_time_password_audited_and_sessions_end(client, make_staff):
    from django.test import Client

    admin = make_staff(Role.ADMIN)
    rhea = make_staff(Role.REVIEWER, username="rhea")
    rheas_browser = Client()
    _login(rheas_browser, "rhea", PASSWORD)
    client.force_login(admin)
    response = client.post(reverse("people:staff-password"), {"user": rhea.pk}, follow=True)
    password = re.search(r"New one-time password for rhea: (\S+)", response.content.decode()).group(1)
    rhea.refresh_from_db()
    assert rhea.must_change_password and rhea.check_password(password)
    event = AuditEvent.objects.get(action=AuditAction.STAFF_PASSWORD_ISSUED, target_id=str(rhea.pk))
    assert event.actor_id == str(admin.pk) and event.data == {"username": "rhea"}
    assert password not in str(event.data)
    assert rheas_browser.get(reverse("core:home")).url.startswith(reverse("people:login"))  # signed out
    _login(rheas_browser, "rhea", password)
    assert rheas_browser.get(reverse("core:home")).url == reverse("people:password-change")


def test_only_admins_issue_one_time_passwords(client, make_staff):
    rhea = make_staff(Role.REVIEWER, username="rhea")
    client.force_login(make_staff(Role.COMPLIANCE_OFFICER))
    assert client.post(reverse("people:staff-password"), {"user": rhea.pk}).status_code == 403
    rhea.refresh_from_db()
    assert rhea.check_password(PASSWORD) and not rhea.must_change_password


def test_an_admin_cannot_issue_herself_a_one_time_password(client, make_staff):
    admin = make_staff(Role.ADMIN)
    client.force_login(admin)
    response = client.post(reverse("people:staff-password"), {"user": admin.pk}, follow=True)
    assert b"change your own password" in response.content
    admin.refresh_from_db()
    assert admin.check_password(PASSWORD)
