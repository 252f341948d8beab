"""The API tokens page in Chromium: a compliance officer finds it in the navigation, creates a token, copies the
secret shown once, uses it against the API from outside the browser's session, and revokes it after confirming;
every page on the way (empty list, a refused form, the secret, the confirmation, the list) passes axe."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from playwright.sync_api import expect

from reviewapp.people.models import StaffApiToken
from reviewapp.people.roles import Role
from tests.browser import serious_accessibility_violations

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]
PASSWORD = "correct horse battery"


def test_create_use_and_revoke_a_token(page, sign_in, make_staff, artifacts_dir):
    make_staff(Role.COMPLIANCE_OFFICER, username="cora", password=PASSWORD)
    sign_in("cora", PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="API tokens").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your API tokens")
    expect(page.get_by_text("You have no API tokens.")).to_be_visible()
    assert serious_accessibility_violations(page) == [], "empty list"

    page.get_by_role("button", name="Create token").click()  # no name: refused, said at the top
    expect(page.get_by_role("alert")).to_contain_text("No token was created")
    assert serious_accessibility_violations(page) == [], "refused form"

    page.get_by_label("Name").fill("nightly decisions export")
    page.get_by_label("Expires").select_option(label="in 30 days")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_role("heading", level=2, name="Copy it now: it is not shown again")).to_be_visible()
    secret = page.get_by_label("Your new token").input_value()
    assert re.fullmatch(r"rvs_[A-Za-z0-9_-]{43}", secret)
    assert serious_accessibility_violations(page) == [], "the secret"
    page.screenshot(path=str(artifacts_dir / "api-token-created.png"), full_page=True)

    # Outside the browser: the token alone reads the console's API.
    assert Client(HTTP_AUTHORIZATION=f"Token {secret}").get("/api/v1/compliance/transparency/").status_code == 200

    page.get_by_role("link", name="Back to your API tokens").click()
    row = page.get_by_role("row", name=re.compile("nightly decisions export"))
    expect(row).to_contain_text("active")
    assert secret not in page.content()
    assert serious_accessibility_violations(page) == [], "list with a token"

    row.get_by_role("button", name="Revoke nightly decisions export").click()
    expect(page.get_by_role("heading", level=2)).to_have_text(re.compile("Revoke nightly decisions export"))
    assert serious_accessibility_violations(page) == [], "confirmation"
    page.get_by_role("button", name="Revoke nightly decisions export").click()
    expect(page.get_by_role("status")).to_contain_text("is revoked")
    expect(page.get_by_role("row", name=re.compile("nightly decisions export"))).to_contain_text("revoked")
    assert serious_accessibility_violations(page) == [], "list after revoking"
    assert StaffApiToken.objects.get().revoked_at is not None
    assert Client(HTTP_AUTHORIZATION=f"Token {secret}").get("/api/v1/compliance/transparency/").status_code == 401
