"""The appeal form's grounds in Chromium: the limit is said under the box, static/js/char-counter.js counts as
the holder types (passing the Content-Security-Policy), nothing is cut at the limit, and the server's refusal
of an over-long text shows the error summary and keeps all of it. Without JavaScript the limit is still said."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from appeals.models import Appeal
from tests.appeals.conftest import enforced_decision, sign_in_path

from .test_content_security_policy import violations_reported

GROUNDS = "Why do you think the decision is wrong?"


@pytest.fixture
def holder(transactional_db, detector, policy, make_staff, settings, tmp_path):
    settings.APPEAL_ATTACHMENTS_DIR = tmp_path / "appeal-attachments"
    return enforced_decision(detector, make_staff, policy["extraction"], account_id="acct_counter",
                             email="holder@example.com")


def _appeal_form(page, holder):
    page.goto(sign_in_path(holder.account))
    page.get_by_role("button", name="Continue").click()
    page.goto(f"/appeals/decisions/{holder.decision.pk}/appeal/")
    return page.get_by_label(GROUNDS)


def test_the_counter_counts_live_and_the_server_keeps_an_over_long_text(page, holder):
    reported = violations_reported(page)
    box = _appeal_form(page, holder)
    line = page.locator("#id_grounds_limit")
    expect(line).to_have_text("20,000 characters left")
    box.fill("x" * 120)
    expect(line).to_have_text("19,880 characters left")
    expect(line).not_to_have_class("hint char-limit over")
    box.fill("y" * 20_005)  # what a paste did: the browser cut it at 20,000, silently
    expect(line).to_have_text("5 characters too many")
    expect(line).to_have_class("hint char-limit over")
    assert len(box.input_value()) == 20_005
    page.get_by_role("button", name="File my appeal").click()
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("This is 20005 characters long; the limit is 20000.")
    expect(summary).to_be_focused()
    assert len(page.get_by_label(GROUNDS).input_value()) == 20_005  # all of it, kept
    expect(page.locator("#id_grounds_limit")).to_have_text("5 characters too many")
    summary.get_by_role("link").click()
    expect(page.get_by_label(GROUNDS)).to_be_focused()
    assert not Appeal.objects.exists()
    assert reported == []


def test_without_javascript_the_limit_is_said_in_words(browser, live_server, holder):
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    try:
        page = context.new_page()
        _appeal_form(page, holder)
        expect(page.locator("#id_grounds_limit")).to_have_text("At most 20,000 characters.")
    finally:
        context.close()
