"""The export page in Chromium: no serious or critical axe violations on the form, with a refused value (the error
beside its field) and with every column list opened; reached from the console home's exports panel; and, with
JavaScript turned off, the form downloads the chosen dataset over the chosen dates (a file of that dataset's rows)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from playwright.sync_api import expect

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.services import SYSTEM, record
from reviewapp.compliance.exports.selectors import AUDIT
from reviewapp.people.roles import Role
from tests.browser import serious_accessibility_violations, sign_in_on

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]
PASSWORD = "correct horse battery"


def test_the_export_page_passes_axe(page, sign_in, make_staff, artifacts_dir):
    make_staff(Role.COMPLIANCE_OFFICER, username="olga", password=PASSWORD)
    sign_in("olga", PASSWORD)
    page.goto("/compliance/")
    page.get_by_role("region", name="Exports").get_by_role("link", name="choose the dataset, format and dates").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Exports")
    assert serious_accessibility_violations(page) == [], "the form"
    for summary in page.locator("summary").all():
        summary.click()
    expect(page.get_by_text("The platform's account id").first).to_be_visible()
    assert serious_accessibility_violations(page) == [], "the columns opened"
    page.screenshot(path=str(artifacts_dir / "console-exports.png"), full_page=True)

    page.get_by_label("From (UTC date)").fill("2026-03-02")
    page.get_by_label("To (UTC date, inclusive)").fill("2026-03-01")
    page.get_by_role("button", name="Download").click()
    expect(page.get_by_role("alert")).to_contain_text("To (UTC date, inclusive): Must not be before From.")
    expect(page.locator("#id_to_error")).to_have_text("To (UTC date, inclusive): Must not be before From.")
    expect(page.get_by_label("To (UTC date, inclusive)")).to_have_attribute("aria-invalid", "true")
    assert serious_accessibility_violations(page) == [], "a refused range"
    page.screenshot(path=str(artifacts_dir / "console-exports-bad.png"), full_page=True)


def test_the_export_page_downloads_without_javascript(no_script_page, transactional_db, make_staff):
    make_staff(Role.COMPLIANCE_OFFICER, username="olga", password=PASSWORD)
    marker = record(actor=SYSTEM, action="compliance.exported", data={"note": "seeded, \"for\" the browser"})
    day = marker.created_at.date().isoformat()
    page = no_script_page
    sign_in_on(page, "olga", PASSWORD)

    page.goto("/compliance/exports/")
    page.get_by_role("radio", name="Audit trail").check()
    page.get_by_role("radio", name="CSV").check()
    page.get_by_label("From (UTC date)").fill(day)
    page.get_by_label("To (UTC date, inclusive)").fill(day)
    with page.expect_download() as downloading:
        page.get_by_role("button", name="Download").click()
    download = downloading.value
    assert download.suggested_filename == f"reviewapp-audit-{day}-{day}.csv"
    rows = list(csv.DictReader(io.StringIO(download.path().read_text(encoding="utf-8"))))
    assert list(rows[0]) == AUDIT.column_names
    mine = next(row for row in rows if row["id"] == str(marker.pk))
    assert json.loads(mine["data"]) == {"note": "seeded, \"for\" the browser"}
    event = AuditEvent.objects.filter(action=AuditAction.COMPLIANCE_EXPORTED, actor_display="olga").get()
    assert event.data["dataset"] == "audit" and event.data["from"] == day == event.data["to"]

    # A refused value without JavaScript: the page again, its error named beside the field.
    page.goto("/compliance/exports/")
    page.get_by_label("From (UTC date)").fill("2026-01-02")
    page.get_by_label("To (UTC date, inclusive)").fill("2026-01-01")
    page.get_by_role("button", name="Download").click()
    expect(page.locator("#id_to_error")).to_have_text("To (UTC date, inclusive): Must not be before From.")
