"""The real-browser harness: Debian's Chromium driven by Playwright against pytest-django's live server.

A plugin of the whole suite (tests/conftest.py ``pytest_plugins``), so a browser test outside tests/e2e (the
compliance console's) shares the one Chromium of its process instead of starting a second Playwright (which
the sync API refuses inside the first one's event loop). Such a test marks itself
``pytest.mark.xdist_group("browser")``, as tests/e2e's are marked by their conftest.

`playwright install` cannot download browsers here, so the system Chromium is started through
``executable_path``. A failing test leaves a full-page screenshot in test-artifacts/screenshots/.
"""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: run `make browser` (installs Debian's chromium)")
    # Playwright's sync API keeps an event loop running in this thread while it lives; the ORM calls
    # tests make meanwhile are ordinary synchronous calls, which Django would otherwise refuse.
    # (Child processes never inherit this: tests.support.child_env drops it.)
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def fresh_rate_limits(django_db_blocker):
    """Rate-limit counters are per address, and every browser test signs in from 127.0.0.1."""
    from django.core.cache import cache

    with django_db_blocker.unblock():
        cache.clear()


@pytest.fixture
def page(browser, live_server, artifacts_dir, request, fresh_rate_limits):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        shots = artifacts_dir / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        path = shots / f"{request.node.name}.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"\nscreenshot of the failure: {path}")
    context.close()


@pytest.fixture
def no_script_page(browser, live_server, fresh_rate_limits):
    """A page with JavaScript turned off: what a holder on a poor connection, or a strict browser, gets."""
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def sign_in(page, transactional_db):
    def sign_in(username: str, password: str):
        page.goto("/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        with page.expect_navigation():  # the POST always lands on a new page: home, or the form with an error
            page.get_by_role("button", name="Sign in").click()
        return page

    return sign_in


def sign_in_on(page, username: str, password: str, *, base_url: str = "") -> None:
    """Sign in through the login form on ``page`` — any page, JavaScript on or off (the ``sign_in`` fixture is for
    the ``page`` fixture's own page) — and wait until signed in."""
    from playwright.sync_api import expect

    page.goto(f"{base_url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def serious_accessibility_violations(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']}"
        for v in results.response["violations"]
        if v.get("impact") in {"serious", "critical"}
    ]
