"""In Chromium, the Forum journey (issue 10): a reviewer proposes a share from a campaign page, a sharing officer
previews it (what leaves beside the exact JSON and its hash) and approves it, the real Celery worker pushes it to a
real medallion hub (sent), the holder's appeal is overturned and their objects are withdrawn, the officer
withdraws the share (confirming first); the officer's share page says withdrawn and the holder's portal says what
was shared and that it was withdrawn. Screenshots in test-artifacts/screenshots/forum-*.png."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from appeals.services import appeal_claim, appeal_decide, appeal_file
from reviewapp.cases.models import Case
from reviewapp.forum.models import ForumPush, ShareProposal
from reviewapp.outbox.tasks import reconcile_outbox
from reviewapp.people.roles import Role
from tests.appeals.conftest import enforced_decision, sign_in_path
from tests.forum.conftest import forum_hub, sharing_people, world  # noqa: F401 (fixtures)
from tests.support import wait_for

from .conftest import serious_accessibility_violations

pytestmark = [pytest.mark.worker, pytest.mark.xdist_group("worker")]
PASSWORD = "correct horse battery"


def _shot(page, artifacts_dir, name):
    shots = artifacts_dir / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / f"forum-{name}.png"), full_page=True)


def _signed_in(browser, live_server, username):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    return context, page


def _sent(push_filter):
    def step():
        reconcile_outbox.delay()
        push = ForumPush.objects.filter(**push_filter).order_by("-pk").first()
        return push is not None and push.state == ForumPush.State.SENT
    return step


def test_propose_preview_approve_sent_overturned_withdrawn(browser, live_server, artifacts_dir, celery_worker,
                                                          forum_hub, world, sharing_people, detector,  # noqa: F811
                                                          policy, make_staff, settings, tmp_path):
    settings.APPEAL_ATTACHMENTS_DIR = tmp_path / "attachments"
    holder = enforced_decision(detector, make_staff, policy["extraction"], account_id="acct_forum_holder",
                               email="holder@example.com")
    campaign, _ = world.campaign(5)
    Case.objects.filter(pk=holder.decision.case_id).update(campaign=campaign)

    # A reviewer proposes from the campaign page: account pseudonyms ticked, excerpts left unticked.
    context, page = _signed_in(browser, live_server, "rita-reviewer")
    page.goto(f"/campaigns/{campaign.pk}/")
    page.get_by_role("link", name="Propose a share with the Forum").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Propose a share with the Forum")
    page.get_by_label("Account pseudonyms").check()
    _shot(page, artifacts_dir, "1-propose")
    page.get_by_role("button", name="Propose the share").click()
    expect(page.get_by_text("proposed; a sharing officer will review it")).to_be_visible()
    proposal = ShareProposal.objects.get()
    context.close()

    # A sharing officer (not the proposer) previews and approves.
    context, page = _signed_in(browser, live_server, "otto-officer")
    page.goto("/forum/shares/")
    page.get_by_role("link", name=f"Share {proposal.pk}").first.click()
    expect(page.locator("#what-leaves-text")).to_contain_text("6 account pseudonyms")
    sha = page.locator("#bundle-sha256").inner_text()
    assert re.fullmatch(r"[0-9a-f]{64}", sha)
    expect(page.locator("#bundle-pretty")).to_contain_text('"type": "bundle"')
    assert serious_accessibility_violations(page) == []
    _shot(page, artifacts_dir, "2-preview")
    page.get_by_role("button", name=re.compile(r"^Approve version 1")).click()
    expect(page.get_by_text("approved; it is queued")).to_be_visible()
    wait_for(_sent({"proposal": proposal, "purpose": "share"}), timeout=90, interval=0.5, what="the share sent")
    page.reload()
    expect(page.locator(".delivery-state").first).to_have_text("Sent")
    _shot(page, artifacts_dir, "3-sent")

    # The holder's appeal is overturned: their objects are withdrawn without anyone acting.
    senior = make_staff(Role.SENIOR_REVIEWER, username="sven-senior")
    appeal = appeal_file(account=holder.account, decision=holder.decision, grounds="A registered evaluation.")
    appeal_claim(reviewer=senior, appeal=appeal)
    appeal_decide(reviewer=senior, appeal=appeal, outcome="overturned", reason="It was an evaluation.")
    wait_for(_sent({"proposal": proposal, "purpose": "withdrawal"}), timeout=90, interval=0.5,
             what="the withdrawal sent")
    page.reload()
    expect(page.get_by_text(f"appeal {appeal.pk} overturned the decision")).to_be_visible()

    # The officer withdraws the whole share: a red button, then a confirmation.
    page.get_by_label("Reason for withdrawing").fill("The campaign was a registered evaluation.")
    page.get_by_role("button", name="Withdraw…").click()
    _shot(page, artifacts_dir, "4-confirm-withdraw")
    page.get_by_role("button", name="Withdraw the share").click()
    expect(page.locator("#withdrawn")).to_contain_text("The campaign was a registered evaluation.")
    _shot(page, artifacts_dir, "5-withdrawn")
    context.close()

    # The holder's portal says what was shared and that it was withdrawn.
    context = browser.new_context(base_url=live_server.url)
    portal = context.new_page()
    portal.goto(sign_in_path(holder.account))
    portal.get_by_role("button", name="Continue").click()
    shared = portal.locator("section[aria-labelledby='shared-heading']")
    expect(shared).to_contain_text("a pseudonym of your account")
    expect(shared).to_contain_text(re.compile("withdr", re.I))
    _shot(portal, artifacts_dir, "6-holder-portal")
    context.close()
