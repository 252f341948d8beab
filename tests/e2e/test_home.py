"""A reviewer's home page in a real browser: after claiming the next case of a queue, home lists that case with the
claim's end (date and time) and opens it; a case sent back to them shows with the senior's reason."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from reviewapp.cases.models import Case
from reviewapp.people.roles import Role

from .conftest import serious_accessibility_violations
from .test_reviewer_flow import PASSWORD, seed_cases


def test_a_reviewer_sees_their_claimed_case_on_the_home_page(page, sign_in, make_staff, artifacts_dir):
    first, _ = seed_cases()
    make_staff(Role.REVIEWER, username="rhea")
    sign_in("rhea", PASSWORD)
    claims = page.locator("#claims")
    expect(claims).to_contain_text("You hold no claim.")

    page.goto("/queues/")
    page.get_by_role("button", name="Claim next in Model extraction").click()
    expect(page).to_have_url(re.compile(rf"/cases/{first.pk}/$"))

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Home").click()
    first.refresh_from_db()
    assert first.assignee.username == "rhea"
    expect(page.get_by_role("link", name=re.compile(r"1 claimed by you"))).to_be_visible()
    expect(claims.get_by_role("heading")).to_contain_text("Your claimed cases 1")
    expect(claims).to_contain_text(f"{first.lease_expires_at:%Y-%m-%d %H:%M} UTC (")  # date and time, then time left
    assert serious_accessibility_violations(page) == []
    page.screenshot(path=str(artifacts_dir / "home-reviewer-claimed.png"), full_page=True)

    claims.get_by_role("link", name=f"Case {first.pk} · acct_hl_0001").click()
    expect(page).to_have_url(re.compile(rf"/cases/{first.pk}/$"))
    assert Case.objects.get(pk=first.pk).state == Case.State.IN_REVIEW
