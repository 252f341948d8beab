"""The explorer and the verification pages in Chromium: no serious or critical axe violations, and they work
with JavaScript turned off (filter, page through, open an event, start a run, read its result)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.services import SYSTEM, Entry, Target, record, record_many
from reviewapp.compliance.verification.models import VerificationRun
from reviewapp.people.roles import Role
from tests.browser import serious_accessibility_violations

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]
PASSWORD = "correct horse battery"


def _seed(make_staff):
    officer = make_staff(Role.COMPLIANCE_OFFICER, username="olga", password=PASSWORD)
    record_many([Entry(actor=SYSTEM, action=AuditAction.STAFF_CREATED, target=Target("people.user", str(i)),
                       data={"i": i}) for i in range(60)])
    event = record(actor=officer, action=AuditAction.DECISION_RECORDED, target=Target("cases.decision", "5"),
                   data={"case": 9, "clauses": ["T-1"], "enforcement": {"action": "suspend", "appeal_id": 4}})
    event.refresh_from_db()  # sequenced after its commit (transactional tests commit)
    running = VerificationRun.objects.create(started_by=officer, status=VerificationRun.Status.RUNNING,
                                             events_total=20_000, events_checked=5_000)
    broken = VerificationRun.objects.create(
        started_by=officer, status=VerificationRun.Status.BROKEN, events_total=10, events_checked=3, broken_seq=4,
        reason="event 4 was changed after it was written (its hash does not match)")
    return officer, event, running, broken


def test_the_pages_pass_axe(page, sign_in, make_staff):
    _, event, running, broken = _seed(make_staff)
    sign_in("olga", PASSWORD)
    for path in ["/compliance/audit/", "/compliance/audit/?since=not-a-date", "/compliance/audit/?q=case=9",
                 f"/compliance/audit/{event.pk}/", "/compliance/verify/", f"/compliance/verify/{broken.pk}/",
                 f"/compliance/verify/{running.pk}/?refresh=off", "/compliance/"]:
        page.goto(path)
        if path == f"/compliance/audit/{event.pk}/":
            page.get_by_text("Raw JSON").click()  # the raw JSON open, too
        assert serious_accessibility_violations(page) == [], path


def test_the_pages_work_without_javascript(no_script_page, transactional_db, make_staff):
    _, event, running, broken = _seed(make_staff)
    page = no_script_page
    page.goto("/login/")
    page.get_by_label("Username").fill("olga")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto("/compliance/audit/")
    page.get_by_label("Search in event data").fill("case=9")
    page.get_by_role("button", name="Filter").click()
    page.get_by_role("link", name=str(event.seq), exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Decision recorded")
    expect(page.get_by_role("link", name="Appeal 4")).to_be_visible()

    page.goto("/compliance/audit/")
    page.get_by_role("link", name="Older").click()
    expect(page.get_by_role("link", name="Newest")).to_be_visible()

    page.goto(f"/compliance/verify/{broken.pk}/")
    expect(page.get_by_role("alert")).to_contain_text("BROKEN at event #4")
    VerificationRun.objects.filter(pk=running.pk).update(status=VerificationRun.Status.FAILED, reason="test")
    page.goto("/compliance/verify/")
    page.get_by_role("button", name="Verify the chain now").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Verification of the audit trail")
    expect(page.locator("progress")).to_be_visible()
