"""The console's areas in Chromium: evidence access, the second look (drawn by compliance, given blind by a senior),
detector calibration, verification runs and the console home. Every page, with data, empty, and given a bad filter,
has no serious or critical axe violation; each works with JavaScript turned off (forms submit, charts and tables
are there); a full-page screenshot of each lands in the artifacts directory.

The data are the unit tests' own (their fixtures imported, not copied): test_access.py's journey and weeks,
test_quality.py's decisions, test_calibration.py's detectors.
"""

from __future__ import annotations

import pytest
from django.test import override_settings
from playwright.sync_api import expect

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.checkpoints import audit_checkpoint
from reviewapp.audit.services import SYSTEM, record
from reviewapp.compliance.quality.models import SecondLook, SecondLookSample
from reviewapp.compliance.quality.services import calibration_alerts_check
from reviewapp.compliance.verification.models import VerificationRun
from reviewapp.compliance.verification.services import verification_perform
from reviewapp.people.roles import Role
from tests.browser import serious_accessibility_violations, sign_in_on
from tests.compliance.test_access import journey, weeks_seeded  # noqa: F401 — the fixtures
from tests.compliance.test_calibration import seeded  # noqa: F401 — the fixture
from tests.compliance.test_quality import SECRET_RATIONALE, decided, staff  # noqa: F401 — the fixtures

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]
PASSWORD = "correct horse battery"


def _check(page, path: str, shots, name: str | None = None, *, status: int = 200):
    """Open the page, check its status and axe; keep a full-page screenshot under ``name``."""
    response = page.goto(path)
    assert response.status == status, path
    assert serious_accessibility_violations(page) == [], path
    if name:
        page.screenshot(path=str(shots / f"console-{name}.png"), full_page=True)


def _sign_in_without_javascript(page, username: str):
    sign_in_on(page, username, PASSWORD)


def _assert_boxes_beside_their_text(page, form_selector: str):
    """Each checkbox of the form sits just left of its own label's text, on the same line: a box far from its
    text (a stacked form's full-width inputs stretched it across the row) leaves unclear which clause it ticks."""
    gaps = page.locator(form_selector).evaluate("""form => [...form.querySelectorAll("input[type=checkbox]")]
      .map(box => {
        const label = box.labels[0];
        const walker = document.createTreeWalker(label, NodeFilter.SHOW_TEXT, {
            acceptNode: node => node.data.trim() ? NodeFilter.FILTER_ACCEPT : NodeFilter.FILTER_SKIP});
        const range = document.createRange();
        range.selectNodeContents(walker.nextNode());
        const text = range.getClientRects()[0], b = box.getBoundingClientRect();
        // From the box's centre: a stretched input's own rect reaches its text while the box drawn in it does not.
        return {name: label.textContent.trim(), gap: text.left - (b.left + b.right) / 2,
                sameLine: b.top < text.bottom && text.top < b.bottom};
    })""")
    assert gaps, form_selector
    for box in gaps:
        assert 0 <= box["gap"] <= 40 and box["sameLine"], f"the box of {box['name']!r} is not beside its text: {box}"


# ── Evidence access ──────────────────────────────────────────────────────────────────────────────────────


def test_evidence_access_passes_axe(page, sign_in, journey, weeks_seeded, artifacts_dir):  # noqa: F811
    sign_in("vera", PASSWORD)
    for path, name, status in [
        ("/compliance/evidence-access/", "access-all", 200),
        ("/compliance/evidence-access/outside/", "access-outside", 200),
        ("/compliance/evidence-access/?person=rita&account=acct_b", None, 200),
        ("/compliance/evidence-access/?account=nobody-has-this", "access-empty", 200),
        ("/compliance/evidence-access/?person=nobody&case=x&since=2026-13-01", "access-bad", 400),
        ("/compliance/evidence-access/weekly/?since=2026-11-02&until=2026-12-03", "access-weekly", 200),
        ("/compliance/evidence-access/weekly/?since=2024-01-01&until=2024-02-01", "access-weekly-empty", 200),
        ("/compliance/evidence-access/weekly/?since=2026-12-01&until=2026-11-01", "access-weekly-bad", 400),
    ]:
        _check(page, path, artifacts_dir, name, status=status)
    page.get_by_role("link", name="Per person per week").click()  # the area's own navigation
    expect(page.get_by_role("heading", level=1)).to_have_text("Evidence openings per person per week")


def test_evidence_access_works_without_javascript(no_script_page, transactional_db, journey,  # noqa: F811
                                                  weeks_seeded):  # noqa: F811
    page = no_script_page
    _sign_in_without_javascript(page, "vera")
    page.goto("/compliance/")
    page.get_by_role("link", name="Openings per person per week").click()
    page.get_by_label("From (UTC, inclusive)").fill("2026-11-02")
    page.get_by_label("To (UTC, inclusive)").fill("2026-11-22")
    page.get_by_role("button", name="Show").click()
    chart = page.get_by_role("img", name="Evidence openings per person per week")
    expect(chart).to_be_visible()
    table = page.get_by_role("table", name="Openings per week (2026-11-02 to the week of 2026-11-16); in brackets, "
                                           "outside own assigned cases")
    expect(table.get_by_role("row", name="paula")).to_contain_text("3 (2)")
    table.get_by_role("link", name="paula").click()  # a person's row leads to their openings
    expect(page.get_by_role("table").get_by_role("row")).to_have_count(1 + 3)  # the header and paula's three

    page.get_by_role("link", name="Outside own assigned cases").click()
    page.get_by_label("Person (username)").fill("rita")
    page.get_by_role("button", name="Filter").click()
    rows = page.get_by_role("table").get_by_role("row")
    expect(rows).to_have_count(1 + 2)  # E4 and E3
    expect(rows.nth(1)).to_contain_text("acct_b")
    expect(rows.nth(2)).to_contain_text("acct_a")
    page.get_by_label("From (UTC, inclusive)").fill("2026-12-02")
    page.get_by_label("To (UTC, inclusive)").fill("2026-12-01")
    page.get_by_role("button", name="Filter").click()  # a bad range: said beside its field, nothing listed
    expect(page.get_by_text("To (UTC, inclusive): Must not be before From.")).to_be_visible()
    expect(page.get_by_role("table")).to_have_count(0)


# ── Quality: the second look, drawn by compliance and given blind ─────────────────────────────────────────────


def test_the_second_look_in_the_browser(page, sign_in, decided, staff, artifacts_dir):  # noqa: F811
    shots = artifacts_dir
    sign_in("cora", PASSWORD)
    _check(page, "/compliance/quality/", shots, "quality-no-sample")
    _check(page, "/compliance/quality/disagreements/", shots, "quality-disagreements-none")

    page.get_by_role("link", name="Quality").click()
    page.get_by_role("link", name="Draw a sample").click()
    _check(page, page.url, shots, "quality-draw")
    _assert_boxes_beside_their_text(page, "main form.stack")
    page.get_by_label("Strata").select_option("none")
    page.get_by_label("Decisions per stratum").fill("0")
    page.get_by_label("Decided from").fill("2026-12-31")
    page.get_by_label("Decided to").fill("2026-01-01")
    page.get_by_role("button", name="Draw the sample").click()
    expect(page.get_by_role("alert")).to_contain_text("No sample was drawn")
    assert serious_accessibility_violations(page) == [], "the refused draw"
    page.screenshot(path=str(shots / "console-quality-draw-refused.png"), full_page=True)
    page.get_by_role("alert").get_by_role("link", name="Decisions per stratum").click()  # the summary leads there
    expect(page.get_by_label("Decisions per stratum")).to_be_focused()
    page.get_by_label("Decisions per stratum").fill("10")
    page.get_by_label("Decided from").fill("")
    page.get_by_label("Decided to").fill("")
    page.get_by_label("Seed").fill("1")
    page.get_by_role("button", name="Draw the sample").click()
    expect(page.get_by_text("Drew 7 of 7 decisions (seed 1).")).to_be_visible()
    sample = SecondLookSample.objects.get()
    assert page.url.endswith(f"/compliance/quality/samples/{sample.pk}/")
    assert serious_accessibility_violations(page) == [], "the sample"
    page.screenshot(path=str(shots / "console-quality-sample.png"), full_page=True)

    # A senior reviewer gives the second look of dora's suspension, which abe approved, blind.
    page.context.clear_cookies()
    sign_in("sam-senior", PASSWORD)
    look = SecondLook.objects.get(decision=decided["dora0"])
    _check(page, "/compliance/quality/second-looks/", shots, "quality-second-looks")
    page.get_by_role("link", name=f"Case {decided['dora0'].case_id}", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Second look: case {decided['dora0'].case_id}")
    assert serious_accessibility_violations(page) == [], "the blind page"
    page.screenshot(path=str(shots / "console-quality-blind.png"), full_page=True)
    _assert_boxes_beside_their_text(page, "main form.stack")

    def assert_blind():
        text = page.locator("body").inner_text()
        for secret in (SECRET_RATIONALE, "dora-decider", "abe-approver", "Suspended", f"decision {look.decision_id}",
                       f"Decision {look.decision_id}"):
            assert secret not in text, f"{secret!r} shows on the blind page"
        assert "dora0" in text and "T-2 Competing models" in text  # the case and its policy, to judge from
        expect(page.get_by_label("Action", exact=True)).to_have_value("")  # nothing pre-chosen …
        for box in page.get_by_role("checkbox").all():  # … nor pre-ticked
            expect(box).not_to_be_checked()

    assert_blind()
    page.get_by_role("button", name="Open the evidence").click()
    expect(page.get_by_text("Solve step by step: {problem} (dora0)")).to_be_visible()
    assert serious_accessibility_violations(page) == [], "the blind page, evidence open"
    page.screenshot(path=str(shots / "console-quality-blind-evidence.png"), full_page=True)
    assert_blind()

    page.get_by_role("button", name="Record my verdict").click()  # nothing given: refused, said where
    expect(page.get_by_role("alert")).to_contain_text("Your verdict was not recorded")
    assert serious_accessibility_violations(page) == [], "the refused verdict"
    assert_blind()
    # The verdict with the keyboard: the action chosen with the arrow keys, the clause ticked with the space bar,
    # the rationale typed, the form sent with Enter on its button.
    page.get_by_label("Action", exact=True).focus()
    while page.get_by_label("Action", exact=True).input_value() != "no_violation":
        page.keyboard.press("ArrowDown")
    page.get_by_role("checkbox", name="T-2 Competing models").focus()
    page.keyboard.press("Space")
    page.get_by_label("Rationale").focus()
    page.keyboard.type("Competing training is not shown: the prompts look like an evaluation harness.")
    page.get_by_role("button", name="Record my verdict").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_text("Your second look is recorded.")).to_be_visible()
    look.refresh_from_db()
    assert (look.action, [c.ref for c in look.clauses.all()], look.reviewed_by, look.same_action) == (
        "no_violation", ["T-2"], staff["senior"], False)
    assert serious_accessibility_violations(page) == [], "the second looks after a verdict"

    # Compliance reads the agreement and the disagreement.
    page.context.clear_cookies()
    sign_in("cora", PASSWORD)
    _check(page, "/compliance/quality/", shots, "quality")
    page.get_by_role("link", name="Read the disagreements").click()
    article = page.get_by_role("article")
    expect(article).to_have_count(1)
    expect(article.get_by_role("row", name="Rationale")).to_contain_text(SECRET_RATIONALE)
    assert serious_accessibility_violations(page) == [], "the disagreements"
    page.screenshot(path=str(shots / "console-quality-disagreements.png"), full_page=True)
    _check(page, f"/compliance/quality/samples/{sample.pk}/?page=x", shots)
    _check(page, "/compliance/quality/?page=99", shots)


def test_the_second_look_works_without_javascript(no_script_page, transactional_db, decided, staff):  # noqa: F811
    page = no_script_page
    _sign_in_without_javascript(page, "cora")
    page.goto("/compliance/quality/draw/")
    page.get_by_label("Strata").select_option("none")
    page.get_by_label("Decisions per stratum").fill("10")
    page.get_by_role("checkbox", name="T-1").check()
    page.get_by_role("button", name="Draw the sample").click()
    expect(page.get_by_text("Drew 4 of 4 decisions")).to_be_visible()  # ana's three and ben's T-1+T-3

    page.context.clear_cookies()
    _sign_in_without_javascript(page, "sam-senior")
    page.goto("/compliance/quality/second-looks/")
    look = SecondLook.objects.get(decision=decided["ana0"])
    page.get_by_role("link", name=f"Case {decided['ana0'].case_id}", exact=True).click()
    page.get_by_role("button", name="Open the evidence").click()
    expect(page.get_by_role("heading", name="Evidence")).to_be_visible()
    page.get_by_label("Action", exact=True).select_option("warn")
    page.get_by_role("checkbox", name="T-1 Automated extraction").check()
    page.get_by_label("Rationale").fill("A warning fits a first extraction at this scale.")
    page.get_by_role("button", name="Record my verdict").click()
    expect(page.get_by_text("Your second look is recorded.")).to_be_visible()
    look.refresh_from_db()
    assert (look.action, look.same_action) == ("warn", True)


# ── Calibration ──────────────────────────────────────────────────────────────────────────────────────────────


def test_calibration_passes_axe_with_its_alert(page, sign_in, seeded, make_staff, settings,  # noqa: F811
                                               artifacts_dir):
    settings.COMPLIANCE_OVERTURN_ALERT, settings.COMPLIANCE_OVERTURN_ALERT_MIN_APPEALS = 0.6, 2
    make_staff(Role.COMPLIANCE_OFFICER, username="olga")
    sign_in("olga", PASSWORD)
    _check(page, "/compliance/calibration/", artifacts_dir, "calibration-over-the-line")
    calibration_alerts_check()
    _check(page, "/compliance/calibration/", artifacts_dir, "calibration-alert")
    expect(page.get_by_role("alert")).to_contain_text("sweeper 1.0: 2 of 2 decided appeals overturned")
    _check(page, "/compliance/calibration/?page=not-a-number", artifacts_dir)
    _check(page, "/compliance/", artifacts_dir, "home-alert")
    expect(page.get_by_role("alert")).to_contain_text("Overturn-rate alert")


def test_calibration_reads_without_javascript(no_script_page, transactional_db, seeded, make_staff):  # noqa: F811
    make_staff(Role.COMPLIANCE_OFFICER, username="olga")
    page = no_script_page
    _sign_in_without_javascript(page, "olga")
    page.goto("/compliance/")
    page.get_by_role("link", name="Detector calibration").click()
    table = page.get_by_role("table", name="Calibration per detector and detector version")
    sweeper = table.get_by_role("row", name="sweeper")
    expect(sweeper).to_contain_text("100.0%")
    expect(table.get_by_role("row")).to_have_count(1 + 3)  # miner 1.0 and 2.0, sweeper 1.0
    expect(page.get_by_text("Against human review: violation decisions ÷ cases decided.")).to_be_visible()


# ── Verification runs (the explorer's e2e covers a broken run, one under way and starting one) ──────────────────


def test_verification_results_and_no_runs_pass_axe(page, sign_in, make_staff, tmp_path, artifacts_dir):
    officer = make_staff(Role.COMPLIANCE_OFFICER, username="olga")
    sign_in("olga", PASSWORD)
    _check(page, "/compliance/verify/", artifacts_dir, "verify-no-runs")
    _check(page, "/compliance/", artifacts_dir, "home-no-runs")

    for i in range(5):
        record(actor=SYSTEM, action=AuditAction.STAFF_CREATED, data={"i": i})
    key, path = "console-e2e-key", tmp_path / "checkpoints.jsonl"
    with override_settings(AUDIT_CHECKPOINT_FILE=path, AUDIT_CHECKPOINT_KEY=key, AUDIT_WITNESS_URL=""):
        audit_checkpoint(checkpoint_file=path, key=key)
        record(actor=SYSTEM, action=AuditAction.STAFF_CREATED, data={"after": "the checkpoint"})
        done = verification_perform(run_id=VerificationRun.objects.create(started_by=officer).pk)
    assert done.status == VerificationRun.Status.INCOMPLETE and done.checkpoints["status"] == "ok"
    failed = VerificationRun.objects.create(started_by=officer, status=VerificationRun.Status.FAILED,
                                            reason="OperationalError: the database went away")
    queued = VerificationRun.objects.create(started_by=officer)
    _check(page, f"/compliance/verify/{done.pk}/", artifacts_dir, "verify-incomplete")
    expect(page.get_by_role("alert")).to_contain_text("INCOMPLETE")
    expect(page.get_by_text("agrees", exact=True)).to_be_visible()
    _check(page, f"/compliance/verify/{failed.pk}/", artifacts_dir, "verify-failed")
    _check(page, f"/compliance/verify/{queued.pk}/?refresh=off", artifacts_dir, "verify-queued")
    _check(page, "/compliance/verify/", artifacts_dir, "verify-runs")
    _check(page, "/compliance/verify/?page=last", artifacts_dir)
    _check(page, f"/compliance/verify/{queued.pk + 1}/", artifacts_dir, status=404)
    _check(page, "/compliance/", artifacts_dir, "home-run-under-way")


# ── The console home ──────────────────────────────────────────────────────────────────────────────────────


def test_the_empty_console_passes_axe(page, sign_in, make_staff, artifacts_dir):
    make_staff(Role.COMPLIANCE_OFFICER, username="olga")
    sign_in("olga", PASSWORD)
    for path, name in [("/compliance/", "home-empty"), ("/compliance/evidence-access/", "access-none"),
                       ("/compliance/evidence-access/weekly/", "access-weekly-none"),
                       ("/compliance/quality/", None), ("/compliance/calibration/", "calibration-empty"),
                       ("/compliance/quality/draw/", None)]:
        _check(page, path, artifacts_dir, name)


def test_the_home_with_every_area_passes_axe(page, sign_in, journey, artifacts_dir):  # noqa: F811
    sign_in("vera", PASSWORD)
    _check(page, "/compliance/", artifacts_dir, "home")
    panels = page.get_by_role("main").get_by_role("heading", level=2)
    expect(panels).to_have_text(["Decisions", "The audit chain", "Evidence access", "Quality and calibration",
                                 "Transparency report", "Exports", "Retention"])


def test_the_home_leads_everywhere_without_javascript(no_script_page, transactional_db, journey):  # noqa: F811
    page = no_script_page
    _sign_in_without_javascript(page, "vera")
    for link, heading in [("4 openings of raw evidence outside the opener's own assigned cases",
                           "Evidence openings outside own assigned cases"),
                          ("Openings per person per week", "Evidence openings per person per week"),
                          ("Agreement, samples and disagreements", "Quality: a second look"),
                          ("Detector calibration", "Detector calibration"),
                          ("Verify the chain", "Verify the audit trail"),
                          ("The decision register", "Decision register"),
                          ("Explore the audit trail", None)]:
        page.goto("/compliance/")
        page.get_by_role("main").get_by_role("link", name=link).click()
        if heading:
            expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        else:
            expect(page.get_by_role("heading", level=1)).to_be_visible()
