"""The reviewer's day in a real browser: claim from a queue and open the evidence with the keyboard, decide a
severe case under a clause that needs a second approver, and a senior reviewer approves it in another session."""

from __future__ import annotations

import re

from django.conf import settings
from playwright.sync_api import expect

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.services import SYSTEM
from reviewapp.cases.models import Case, Decision, StatementOfReasons
from reviewapp.people.roles import Role
from reviewapp.policy.services import policies_load
from tests.conftest import flag_payload
from tests.factories import DetectorFactory, ingest_and_group

from .conftest import serious_accessibility_violations

PASSWORD = "correct horse battery"
EXCERPT = "You are a meticulous tutor. Think aloud through every intermediate result. [algebra] find all n"


def seed_cases():
    """Two extraction cases (one clearly first in the queue, with evidence) through the real ingestion path."""
    policies_load(directory=settings.POLICIES_DIR, actor=SYSTEM)
    detector = DetectorFactory(slug="template-miner", name="Template miner", owner_team="T&S")
    flags = [
        flag_payload(1, account_id="acct_hl_0001", signal="reasoning_extraction", score=0.97, cluster_id="cg-1",
                     request_count=2_400_000, evidence={"excerpts": [EXCERPT], "template_share": 0.94}),
        flag_payload(2, account_id="acct_hl_0001", signal="templated_prompts", score=0.88, cluster_id="cg-1",
                     observed_from="2026-11-22T00:00:00Z", observed_to="2026-11-23T00:00:00Z", request_count=800_000),
        flag_payload(3, account_id="acct_hl_0002", signal="templated_prompts", score=0.6, cluster_id="cg-1",
                     request_count=40_000),
    ]
    cases = {case.account.external_id: case for case in ingest_and_group(detector, flags)}
    return cases["acct_hl_0001"], cases["acct_hl_0002"]


def sign_in_on(page, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("load")


def test_claim_evidence_decide_and_second_approval_with_the_keyboard(page, browser, live_server, sign_in, make_staff):
    first, second = seed_cases()
    make_staff(Role.REVIEWER, username="rhea")
    make_staff(Role.SENIOR_REVIEWER, username="sam")

    # The reviewer goes to the queues (g q), then to the extraction queue.
    sign_in("rhea", PASSWORD)
    page.keyboard.press("g")
    page.keyboard.press("q")
    expect(page.get_by_role("heading", name="Queues", exact=True)).to_be_visible()
    page.get_by_role("link", name="Model extraction").click()
    expect(page.get_by_role("heading", name="Model extraction")).to_be_visible()
    assert serious_accessibility_violations(page) == []
    rows = page.locator("a.row-link")
    expect(rows).to_have_text(["acct_hl_0001", "acct_hl_0002"])  # priority first

    # j / k walk the rows; c claims the next case.
    page.keyboard.press("j")
    expect(rows.nth(0)).to_be_focused()
    page.keyboard.press("j")
    expect(rows.nth(1)).to_be_focused()
    page.keyboard.press("k")
    expect(rows.nth(0)).to_be_focused()
    page.keyboard.press("?")
    help_dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(help_dialog).to_contain_text("Claim the next case of this queue")
    page.keyboard.press("Escape")
    page.keyboard.press("c")
    expect(page).to_have_url(re.compile(rf"/cases/{first.pk}/$"))
    expect(page.get_by_role("status")).to_contain_text(f"You claimed case {first.pk}")
    expect(page.get_by_role("img", name=re.compile("Requests and detector scores"))).to_be_visible()
    # Checked without the flash message: base.html puts role="status" on the <ul> of messages, which axe
    # reports as list items outside a list (a base-layout issue, reported separately).
    page.reload()
    assert serious_accessibility_violations(page) == []

    # e opens the evidence (an audited POST); the excerpt appears only now.
    expect(page.get_by_text(EXCERPT)).to_have_count(0)
    page.keyboard.press("e")
    expect(page.get_by_text(EXCERPT)).to_be_visible()
    assert AuditEvent.objects.filter(action=AuditAction.EVIDENCE_OPENED, actor_display="rhea").count() == 1

    # d jumps to the decision form; a clause that needs a second approver narrows the actions.
    page.keyboard.press("d")
    expect(page.locator("#decision-form input[name=clauses]").first).to_be_focused()
    page.get_by_label("UP-1.1 Using outputs to develop competing models").check()
    action = page.get_by_label("Action", exact=True)
    expect(action.locator("option[value=rate_limit]")).to_be_disabled()  # UP-1.1 permits no rate limit
    action.select_option("terminate")
    expect(page.locator("[data-duration]")).to_be_hidden()
    expect(page.locator("[data-four-eyes]")).to_contain_text("will wait for a senior reviewer's approval")
    page.get_by_label("Rationale").fill("94% of 2.4M prompts fill one reasoning template; cluster cg-1.")
    page.get_by_label("Facts for the account holder").fill(
        "Between 20 and 23 November your account sent 3.2 million prompts built from one template.")
    page.keyboard.press("Control+Enter")  # submit and take the next case

    expect(page).to_have_url(re.compile(rf"/cases/{second.pk}/$"))
    messages = page.get_by_role("status")
    expect(messages).to_contain_text("waits for a senior reviewer's approval")
    expect(messages).to_contain_text(f"Next: you claimed case {second.pk}")
    decision = Decision.objects.get(case=first)
    assert decision.state == Decision.State.AWAITING_APPROVAL and decision.action == "terminate"
    assert not StatementOfReasons.objects.exists()
    page.keyboard.press("n")
    expect(page.get_by_label(re.compile("^Add a note"))).to_be_focused()

    # The second case: a warning (enforced at once), submitted with s once focus has left the text boxes.
    page.get_by_label("UP-2.1 Automated extraction at scale").check()
    page.get_by_label("Action", exact=True).select_option("warn")
    expect(page.locator("[data-four-eyes]")).to_contain_text("enforced as soon as you submit it")
    page.get_by_label("Rationale").fill("Templated prompts at scale, same cluster as acct_hl_0001.")
    page.get_by_label("Facts for the account holder").fill("Your account sent 40,000 prompts from one template.")
    page.keyboard.press("s")  # typed into the text box: no shortcut
    expect(page.get_by_label("Facts for the account holder")).to_have_value(re.compile(r"template\.s$"))
    page.get_by_label("Facts for the account holder").fill("Your account sent 40,000 prompts from one template.")
    page.keyboard.press("Tab")
    page.keyboard.press("s")
    expect(page).to_have_url(re.compile(r"/queues/extraction/$"))  # nothing left to claim
    expect(page.get_by_role("status")).to_contain_text("No more cases to claim in Model extraction")
    assert Decision.objects.get(case=second).state == Decision.State.ENFORCED

    # A senior reviewer, in another browser session, approves from the Approvals page (g r).
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    try:
        senior = context.new_page()
        sign_in_on(senior, "sam")
        senior.keyboard.press("g")
        senior.keyboard.press("r")
        expect(senior.get_by_role("heading", name="Approvals")).to_be_visible()
        senior.get_by_role("link", name=f"Case {first.pk} · acct_hl_0001").click()
        expect(senior.get_by_role("heading", name=re.compile(r"Awaiting second approval"))).to_be_visible()
        senior.get_by_role("button", name="Approve and enforce").click()
        expect(senior.get_by_role("status")).to_contain_text(f"Approved decision {decision.pk}")
        expect(senior.locator(".page-head .state")).to_have_text("Decided")
        statement = StatementOfReasons.objects.get(decision=decision)
        senior.get_by_role("link", name=f"No. {statement.pk}").first.click()
        expect(senior.get_by_role("heading", name=f"Statement of reasons No. {statement.pk}")).to_be_visible()
        expect(senior.get_by_text("UP-1.1 Using outputs to develop competing models")).to_be_visible()
    finally:
        context.close()

    decision.refresh_from_db()
    first.refresh_from_db()
    assert decision.state == Decision.State.ENFORCED and decision.approved_by.username == "sam"
    assert first.state == Case.State.DECIDED
