"""The retention page in Chromium: no serious or critical axe violations before a purge (evidence and emails due),
after it (the runs, nothing due), on the console home with its panel, and on a case whose evidence was removed,
which a compliance officer opens and reads as "removed under retention"."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from reviewapp.compliance.retention.services import retention_purge
from reviewapp.people.roles import Role
from tests.browser import serious_accessibility_violations
from tests.compliance.test_retention import world  # noqa: F401 — the fixture

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]
PASSWORD = "correct horse battery"


def test_the_retention_pages_pass_axe(page, sign_in, world, make_staff, artifacts_dir):  # noqa: F811
    make_staff(Role.COMPLIANCE_OFFICER, username="olga", password=PASSWORD)
    sign_in("olga", PASSWORD)

    page.goto("/compliance/retention/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Retention")
    expect(page.get_by_role("table", name="Evidence due for removal, by the rule that makes it due")).to_contain_text(
        "Decided under T-1")
    assert serious_accessibility_violations(page) == [], "before the purge"
    page.screenshot(path=str(artifacts_dir / "retention-due.png"), full_page=True)

    retention_purge(dry_run=True)
    retention_purge()
    page.goto("/compliance/")
    expect(page.get_by_role("region", name="Retention")).to_contain_text("The last purge")
    assert serious_accessibility_violations(page) == [], "console home"
    page.get_by_role("link", name="What the next purge would remove, and every run").click()
    expect(page.get_by_text("No evidence is due for removal.")).to_be_visible()
    expect(page.get_by_role("cell", name="Purge (removed)")).to_be_visible()
    assert serious_accessibility_violations(page) == [], "after the purge"
    page.screenshot(path=str(artifacts_dir / "retention-runs.png"), full_page=True)

    page.goto(reverse("review:case", args=[world.cases["t1_out"].pk]))
    page.get_by_role("button", name="Show evidence").click()
    expect(page.get_by_text("Evidence removed under retention on").first).to_be_visible()
    assert serious_accessibility_violations(page) == [], "purged evidence"
