"""The decision register, a decision's record and a case's history in Chromium (issue 11): with data, empty and
given a bad filter, no serious or critical axe violation; the register filters and the record opens with
JavaScript turned off; a full-page screenshot of each lands in the artifacts directory.

The data are the unit tests' own (their fixtures imported): test_records.py's full journey (ingest → decide →
sent back → approved → shared → appealed → overturned → withdrawn)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser import serious_accessibility_violations, sign_in_on
from tests.compliance.test_records import journey  # noqa: F401 — the fixture
from tests.forum.conftest import forum_hub, sharing_people  # noqa: F401 — the fixtures

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser"), pytest.mark.django_db(transaction=True)]
PASSWORD = "correct horse battery"


def _check(page, path: str, shots, name: str | None, *, status: int = 200):
    response = page.goto(path)
    assert response.status == status, path
    assert serious_accessibility_violations(page) == [], path
    if name:
        page.screenshot(path=str(shots / f"records-{name}.png"), full_page=True)


def test_register_record_and_history_pass_axe(page, sign_in, journey, artifacts_dir):  # noqa: F811
    decision, case = journey["decision"], journey["case"]
    sign_in("cora-compliance", PASSWORD)
    for path, name, status in [
        ("/compliance/decisions/", "register", 200),
        ("/compliance/decisions/?clause=T-2&appeal=overturned", "register-filtered", 200),
        ("/compliance/decisions/?clause=NOPE", "register-empty", 200),
        ("/compliance/decisions/?action=obliterate&decided_from=2026-13-01", "register-bad", 400),
        (f"/compliance/decisions/{decision.pk}/", "record", 200),
        (f"/compliance/audit/?within=cases.case%3A{case.pk}", "case-history", 200),
        ("/compliance/audit/?within=cases.account%3A1", None, 400),
    ]:
        _check(page, path, artifacts_dir, name, status=status)


def test_the_register_filters_and_opens_a_record_without_javascript(no_script_page, journey, live_server):  # noqa: F811
    page, decision = no_script_page, journey["decision"]
    sign_in_on(page, "cora-compliance", PASSWORD, base_url=live_server.url)
    page.goto(f"{live_server.url}/compliance/decisions/")
    page.get_by_label("Outcome of appeal").select_option("overturned")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(1)
    page.get_by_role("link", name=f"Decision {decision.pk}", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Decision {decision.pk}")
    expect(page.get_by_role("heading", name="Everything in order")).to_be_visible()
    page.get_by_role("link", name="Its history in the audit trail").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"History of Decision {decision.pk}")
