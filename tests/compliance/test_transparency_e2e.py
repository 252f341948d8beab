"""The transparency report in Chromium: no serious or critical axe violations (a seeded period, an empty one, a bad
period), and without JavaScript the period form works, the charts are there with their tables, and a CSV
downloads."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from reviewapp.people.roles import Role
from tests.browser import serious_accessibility_violations
from tests.compliance.test_transparency import seeded  # noqa: F401 — the fixture

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]
PASSWORD = "correct horse battery"


def test_the_report_passes_axe(page, sign_in, seeded, make_staff, artifacts_dir):  # noqa: F811
    make_staff(Role.COMPLIANCE_OFFICER, username="olga", password=PASSWORD)
    sign_in("olga", PASSWORD)
    for path in ["/compliance/transparency/?from=2026-01&to=2026-03",
                 "/compliance/transparency/?from=2024-01&to=2024-02",
                 "/compliance/transparency/?from=2026-13", "/compliance/transparency/", "/compliance/"]:
        page.goto(path)
        assert serious_accessibility_violations(page) == [], path
    page.goto("/compliance/transparency/?from=2026-01&to=2026-03")
    page.screenshot(path=str(artifacts_dir / "transparency-report.png"), full_page=True)


def test_the_report_works_without_javascript(no_script_page, transactional_db, seeded, make_staff):  # noqa: F811
    make_staff(Role.COMPLIANCE_OFFICER, username="olga", password=PASSWORD)
    page = no_script_page
    page.goto("/login/")
    page.get_by_label("Username").fill("olga")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto("/compliance/")
    page.get_by_role("link", name="The transparency report").click()
    page.get_by_label("From month (UTC)").fill("2026-01")
    page.get_by_label("To month (UTC, inclusive)").fill("2026-03")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Transparency report: January 2026 to March 2026")
    for title in ("Decisions per month, by action", "Appeals per month: filed, decided and overturned",
                  "Researcher-programme accounts flagged, and how their cases ended"):
        expect(page.get_by_role("img", name=title)).to_be_visible()
        expect(page.get_by_role("table", name=f"{title} (Jan 2026 to Mar 2026)")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the numbers of “Appeals per month: filed, decided and overturned” (CSV)"
                         ).click()
    assert download.value.suggested_filename == "transparency-appeals-2026-01-2026-03.csv"
    lines = open(download.value.path(), encoding="utf-8").read().splitlines()  # noqa: SIM115
    assert lines[0] == "month,filed,decided,upheld,overturned,modified,overturn_rate"
    assert lines[1] == "2026-01,2,1,0,1,0,1.0000"
