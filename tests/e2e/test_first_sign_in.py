"""A new staff member's first sign-in in a real browser: the one-time password leads only to the change page."""

import re

from playwright.sync_api import expect

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.services import SYSTEM
from reviewapp.people.roles import Role
from reviewapp.people.services import staff_create

from .conftest import serious_accessibility_violations

NEW_PASSWORD = "plum orchard lantern 42"


def test_a_new_staff_member_must_change_the_one_time_password_first(page, sign_in, artifacts_dir):
    user, one_time = staff_create(actor=SYSTEM, username="nadia", role=Role.REVIEWER)
    sign_in("nadia", one_time)
    expect(page).to_have_url(re.compile(r"/password/$"))
    expect(page.get_by_role("heading", name="Change your password")).to_be_visible()
    expect(page.get_by_text("You signed in with a one-time password")).to_be_visible()
    expect(page.get_by_label("Current password")).to_have_count(0)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Queues")).to_have_count(0)
    assert serious_accessibility_violations(page) == []
    page.screenshot(path=str(artifacts_dir / "first-sign-in-change-password.png"), full_page=True)

    for path in ("/", "/queues/", "/api/docs/"):  # nothing else opens until the password is changed
        page.goto(path)
        expect(page).to_have_url(re.compile(r"/password/$"))

    page.get_by_label("New password", exact=True).fill("short")
    page.get_by_label("New password again").fill("short")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("alert")).to_contain_text("too short")
    expect(page).to_have_url(re.compile(r"/password/$"))

    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_text("Your password is changed.")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Queues")).to_be_visible()
    assert AuditEvent.objects.filter(action=AuditAction.STAFF_PASSWORD_CHANGED, target_id=str(user.pk)).exists()

    page.get_by_role("button", name="Sign out").click()
    sign_in("nadia", one_time)
    expect(page.get_by_role("alert")).to_contain_text("didn't match")
    sign_in("nadia", NEW_PASSWORD)
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("heading", name="Change your password")).to_have_count(0)
