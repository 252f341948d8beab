"""A refused decision in a real browser: the page opens on an error summary at the top, focused, whose links
take the reviewer to each field, and what was typed is still there."""

from __future__ import annotations

from playwright.sync_api import expect

from reviewapp.cases.services.claims import case_claim
from reviewapp.people.roles import Role

from .test_reviewer_flow import PASSWORD, seed_cases


def test_a_refused_decision_opens_on_a_focused_error_summary_linking_to_its_fields(page, sign_in, make_staff):
    case, _ = seed_cases()
    reviewer = make_staff(Role.REVIEWER, username="rhea")
    case_claim(reviewer=reviewer, case=case)
    sign_in("rhea", PASSWORD)
    page.goto(f"/cases/{case.pk}/")
    # No clause cited: only the server notices (the clause boxes are not `required`).
    page.locator("select[name=action]").select_option("warn")
    page.locator("textarea[name=rationale]").fill("Template share 0.94 over 2.4M requests.")
    page.locator("textarea[name=facts_for_holder]").fill("Your prompts came from one template.")
    with page.expect_navigation():
        page.get_by_role("button", name="Submit", exact=True).click()

    summary = page.get_by_role("alert").filter(has_text="to correct")
    expect(summary).to_be_visible()
    assert page.evaluate("document.activeElement.hasAttribute('data-error-summary')")
    assert page.evaluate("window.scrollY") < 200  # the page opens at the top, where the summary is
    link = summary.get_by_role("link", name="Cite at least one clause.")
    link.click()
    assert page.evaluate("document.activeElement.name") == "clauses"
    expect(page.locator("textarea[name=rationale]")).to_have_value("Template share 0.94 over 2.4M requests.")
