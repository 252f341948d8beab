"""A reviewer signs in with a real browser and sees the navigation their role allows."""

import re

from playwright.sync_api import expect

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.people.roles import Role

from .conftest import serious_accessibility_violations

PASSWORD = "correct horse battery"


def test_reviewer_signs_in_and_sees_their_navigation(page, sign_in, make_staff):
    make_staff(Role.REVIEWER, username="rhea")
    sign_in("rhea", PASSWORD)
    expect(page).to_have_url(re.compile(r"/$"))
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Home")).to_be_visible()
    expect(nav.get_by_role("link", name="API docs")).to_be_visible()
    expect(nav.get_by_role("link", name="Audit trail")).to_have_count(0)
    expect(page.locator(".role")).to_have_text("Reviewer")
    assert AuditEvent.objects.filter(action=AuditAction.AUTH_LOGIN, actor_display="rhea").exists()


def test_compliance_officer_follows_the_keyboard_shortcut_to_the_audit_trail(page, sign_in, make_staff):
    make_staff(Role.COMPLIANCE_OFFICER, username="cora")
    sign_in("cora", PASSWORD)
    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    page.keyboard.press("Escape")
    page.keyboard.press("g")
    page.keyboard.press("a")
    expect(page).to_have_url(re.compile(r"/audit/$"))
    expect(page.get_by_role("heading", name="Audit trail")).to_be_visible()
    expect(page.get_by_role("cell", name="Signed in")).to_be_visible()


def test_wrong_password_says_so_and_sign_out_works(page, sign_in, make_staff):
    make_staff(Role.REVIEWER, username="rhea")
    sign_in("rhea", "not the password")
    expect(page.get_by_role("alert")).to_contain_text("didn't match")
    sign_in("rhea", PASSWORD)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Staff sign-in")).to_be_visible()


def test_sign_in_and_home_pages_have_no_serious_accessibility_violations(page, sign_in, make_staff):
    make_staff(Role.ADMIN, username="ada")
    page.goto("/login/")
    assert serious_accessibility_violations(page) == []
    sign_in("ada", PASSWORD)
    assert serious_accessibility_violations(page) == []
    page.goto("/staff/")
    assert serious_accessibility_violations(page) == []
