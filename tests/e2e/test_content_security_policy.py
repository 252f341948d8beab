"""The Content-Security-Policy in a real browser: the pages' own scripts (the keyboard shortcuts, the review
helpers) and styles pass it, Swagger UI at /api/docs/ still renders, and Chromium reports no violation."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from reviewapp.people.roles import Role

from .test_reviewer_flow import EXCERPT, PASSWORD, seed_cases


def violations_reported(page) -> list[str]:
    reported: list[str] = []
    page.on("console", lambda message: reported.append(message.text)
            if "Content Security Policy" in message.text or "Refused to" in message.text else None)
    page.add_init_script("document.addEventListener('securitypolicyviolation', e => "
                         "console.error('Refused to load: Content Security Policy ' + e.violatedDirective + ' ' "
                         "+ e.blockedURI))")
    return reported


def test_the_reviewer_pages_and_their_shortcuts_pass_the_policy(page, sign_in, make_staff):
    reported = violations_reported(page)
    seed_cases()
    make_staff(Role.REVIEWER, username="rhea")
    response = page.goto("/login/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    sign_in("rhea", PASSWORD)
    page.keyboard.press("g")
    page.keyboard.press("q")
    expect(page.get_by_role("heading", name="Queues", exact=True)).to_be_visible()
    page.get_by_role("link", name="Model extraction").click()
    expect(page.get_by_role("heading", name="Model extraction")).to_be_visible()
    page.wait_for_load_state("load")  # the shortcuts are deferred scripts: they listen once the page has loaded
    rows = page.locator("a.row-link")
    page.keyboard.press("j")
    expect(rows.nth(0)).to_be_focused()
    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    page.keyboard.press("Escape")
    page.keyboard.press("c")  # claims the best case and opens it
    expect(page).to_have_url(re.compile(r"/cases/\d+/$"))
    assert "no-store" in page.evaluate("() => fetch(location.href).then(r => r.headers.get('cache-control'))")
    page.keyboard.press("e")
    expect(page.get_by_text(EXCERPT)).to_be_visible()  # review.js: the evidence opens in place
    page.goto("/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("reviewapp API")
    assert reported == []
