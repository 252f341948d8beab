"""The account holders' portal in Chromium: every page (start, sign-in, home, statement, the appeal form and
its refusal, the confirmation, the appeal) has no serious or critical axe violations, at desktop size and on
a phone with no horizontal scroll; and the whole journey works with JavaScript turned off.

Set PORTAL_SCREENSHOTS=1 to keep a full-page screenshot of each page in test-artifacts/portal/.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from appeals.models import Appeal, AppealMessage
from appeals.services import appeal_claim, appeal_decide, appeal_message_add
from reviewapp.people.roles import Role
from tests.appeals.conftest import PDF, enforced_decision, sign_in_path

from .conftest import serious_accessibility_violations

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def holder(transactional_db, detector, policy, make_staff, settings, tmp_path):
    settings.APPEAL_ATTACHMENTS_DIR = tmp_path / "appeal-attachments"
    return enforced_decision(detector, make_staff, policy["extraction"], account_id="acct_7f3a9c",
                             email="holder@example.com")


@pytest.fixture
def senior(holder, make_staff):
    """A senior reviewer who took no part in the decision: claims, asks and decides the appeal."""
    return make_staff(Role.SENIOR_REVIEWER, username="olga")


def _visit_every_page(page, holder, senior, check) -> None:
    """Walk the portal as a holder does, calling ``check(page, name)`` on each page."""
    page.goto("/appeals/")
    check(page, "start")
    page.goto(sign_in_path(holder.account))
    check(page, "sign-in")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", level=1, name="Decisions about your account")).to_be_visible()
    check(page, "home")

    page.get_by_role("link", name=f"Read statement of reasons no. {holder.statement.pk}").click()
    expect(page.get_by_role("heading", name="The rule we applied")).to_be_visible()
    check(page, "statement")

    page.get_by_role("link", name="Appeal this decision").click()
    expect(page.get_by_label("Why do you think the decision is wrong?")).to_be_visible()  # the form page loaded
    check(page, "appeal-form")
    page.get_by_label("Why do you think the decision is wrong?").fill("We ran a published benchmark.")
    page.get_by_label("Files (optional)").set_input_files(
        [{"name": "report.pdf", "mimeType": "application/pdf", "buffer": b"MZ this is not a PDF"}])
    page.get_by_role("button", name="File my appeal").click()
    expect(page.get_by_role("alert")).to_contain_text("report.pdf does not look like a .pdf file")
    check(page, "appeal-form-refused")

    page.get_by_label("My account is part of the researcher access programme").check()
    page.get_by_label("Affiliation (optional)").fill("Example University")
    page.get_by_label("Files (optional)").set_input_files(
        [{"name": "letter.pdf", "mimeType": "application/pdf", "buffer": PDF}])
    page.get_by_role("button", name="File my appeal").click()
    expect(page.get_by_role("heading", name="We received your appeal")).to_be_visible()
    check(page, "appeal-filed")

    appeal = Appeal.objects.get(account=holder.account)
    page.get_by_role("link", name=f"Follow appeal no. {appeal.pk}").click()
    expect(page.get_by_role("heading", level=1, name=f"Appeal no. {appeal.pk}")).to_be_visible()
    expect(page.get_by_role("link", name="letter.pdf")).to_be_visible()
    check(page, "appeal")

    # The reviewer asks, the holder sees the question; then the appeal is decided with reasons.
    appeal_claim(reviewer=senior, appeal=appeal)
    appeal_message_add(appeal=appeal, staff=senior, text="Where was the benchmark published?")
    page.reload()
    expect(page.get_by_role("heading", name="Answer the reviewer")).to_be_visible()
    check(page, "appeal-info-requested")
    page.get_by_label("Your message").fill("In the proceedings of a workshop; link attached to my grounds.")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("status")).to_contain_text("Your message is sent to the reviewer.")
    appeal_decide(reviewer=senior, appeal=appeal, outcome="overturned",
                  reason="The traffic matches the published benchmark; the suspension is lifted.")
    page.reload()
    expect(page.get_by_role("heading", name="The outcome")).to_be_visible()
    check(page, "appeal-decided")


def _screenshot(page, artifacts_dir, name: str) -> None:
    if os.environ.get("PORTAL_SCREENSHOTS"):
        shots = artifacts_dir / "portal"
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


def test_every_portal_page_is_accessible(page, holder, senior, artifacts_dir):
    failures = {}

    def check(page, name):
        _screenshot(page, artifacts_dir, f"desktop-{name}")
        if violations := serious_accessibility_violations(page):
            failures[name] = violations

    _visit_every_page(page, holder, senior, check)
    assert failures == {}


def test_every_portal_page_fits_a_phone_and_is_accessible_there(browser, live_server, holder, senior,
                                                                 artifacts_dir):
    context = browser.new_context(base_url=live_server.url, viewport=PHONE, is_mobile=True, has_touch=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    failures = {}

    def check(page, name):
        _screenshot(page, artifacts_dir, f"phone-{name}")
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        if overflow > 0:
            failures[name] = f"scrolls sideways by {overflow}px"
        elif violations := serious_accessibility_violations(page):
            failures[name] = violations

    try:
        _visit_every_page(page, holder, senior, check)
    finally:
        context.close()
    assert failures == {}


def test_the_portal_works_without_javascript(browser, live_server, holder):
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        page.goto("/appeals/")
        page.get_by_label("The email address of the account").fill("holder@example.com")
        page.get_by_role("button", name="Email me a link").click()
        expect(page.get_by_role("status")).to_contain_text("If that address belongs to an account we acted on")

        page.goto(sign_in_path(holder.account))
        page.get_by_role("button", name="Continue").click()
        expect(page).to_have_url(re.compile(r"/appeals/account/$"))
        page.get_by_role("link", name=f"Read statement of reasons no. {holder.statement.pk}").click()
        expect(page.get_by_text("Do not extract outputs at scale.")).to_be_visible()
        page.get_by_role("link", name="Appeal this decision").click()
        page.get_by_label("Why do you think the decision is wrong?").fill("Our evaluation harness, documented.")
        page.get_by_label("Files (optional)").set_input_files(
            [{"name": "letter.pdf", "mimeType": "application/pdf", "buffer": PDF},
             {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"Run log, 20 November."}])
        page.get_by_role("button", name="File my appeal").click()
        expect(page.get_by_role("heading", name="We received your appeal")).to_be_visible()

        appeal = Appeal.objects.get(account=holder.account)
        assert sorted(appeal.attachments.values_list("name", flat=True)) == ["letter.pdf", "notes.txt"]
        page.get_by_role("link", name=f"Follow appeal no. {appeal.pk}").click()
        page.get_by_label("Your message").fill("One more thing: the run was announced.")
        page.get_by_role("button", name="Send").click()
        expect(page.get_by_role("status")).to_contain_text("Your message is sent to the reviewer.")
        expect(page.get_by_text("One more thing: the run was announced.")).to_be_visible()
        assert AppealMessage.objects.filter(appeal=appeal, author_type="holder").count() == 1

        with page.expect_download() as download:
            page.get_by_role("link", name="notes.txt").click()
        assert Path(download.value.path()).read_bytes() == b"Run log, 20 November."

        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("status")).to_contain_text("You are signed out.")
    finally:
        context.close()
