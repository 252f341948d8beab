"""A campaign decision in a real browser: nothing is ticked for the reviewer, the confirmation says exactly how
many accounts and which action, and only the accounts ticked are decided and told."""

from __future__ import annotations

import re

from django.conf import settings
from playwright.sync_api import expect

from reviewapp.audit.services import SYSTEM
from reviewapp.cases.models import Account, Campaign, Decision
from reviewapp.outbox.models import OutboxMessage
from reviewapp.people.roles import Role
from reviewapp.policy.services import policies_load
from tests.conftest import flag_payload
from tests.factories import DetectorFactory, account_contact_set, ingest_and_group

from .conftest import serious_accessibility_violations

PASSWORD = "correct horse battery"
ACCOUNTS = [f"acct_cl_{n:04d}" for n in range(1, 7)]


def seed_campaign() -> Campaign:
    """Six accounts of one cluster, each with a case and a mailbox, through the real ingestion path."""
    policies_load(directory=settings.POLICIES_DIR, actor=SYSTEM)
    detector = DetectorFactory(slug="cluster-finder", name="Cluster finder", owner_team="T&S")
    ingest_and_group(detector, [flag_payload(n, detector="cluster-finder", account_id=account, score=0.8,
                                             cluster_id="cl-42", request_count=50_000)
                                for n, account in enumerate(ACCOUNTS)])
    for account in ACCOUNTS:
        account_contact_set(account, "holder@example.org")
    return Campaign.objects.get()


def test_a_reviewer_ticks_three_accounts_confirms_and_exactly_three_are_decided(page, sign_in, make_staff,
                                                                               artifacts_dir):
    campaign = seed_campaign()
    make_staff(Role.REVIEWER, username="rhea")
    sign_in("rhea", PASSWORD)
    page.goto(f"/campaigns/{campaign.pk}/")
    expect(page.get_by_role("heading", name=campaign.name)).to_be_visible()

    boxes = page.locator("input[name=accounts]")
    expect(boxes).to_have_count(6)
    for n in range(6):
        expect(boxes.nth(n)).not_to_be_checked()  # nothing is ticked for the reviewer
    expect(page.get_by_role("button", name="Select all 6 open accounts")).to_be_visible()

    chosen = ACCOUNTS[:3]
    for account in chosen:
        page.get_by_label(f"Include {account}").check()
    expect(page.locator("[data-chosen-count]")).to_have_text("3 accounts chosen.")
    page.get_by_label("UP-2.1 Automated extraction at scale").check()
    page.get_by_label("Action", exact=True).select_option("rate_limit")
    page.get_by_label("Duration (days)").fill("14")
    page.get_by_label("Rationale").fill("One prompt template across cluster cl-42.")
    page.get_by_label("Facts for the account holder").fill("Your account sent 50,000 prompts from one template.")
    page.get_by_role("button", name="Review the decision for the chosen accounts").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm: Rate-limit 3 accounts for 14 days")
    table = page.get_by_role("table", name="The 3 accounts this decision acts on")
    expect(table.locator("tbody tr")).to_have_count(3)
    for account in chosen:
        expect(table).to_contain_text(account)
    expect(table).not_to_contain_text(ACCOUNTS[3])
    assert not Decision.objects.exists() and not OutboxMessage.objects.exists()  # nothing happened yet
    assert serious_accessibility_violations(page) == []
    page.screenshot(path=str(artifacts_dir / "campaign-confirmation.png"), full_page=True)

    page.get_by_role("button", name="Rate-limit 3 accounts for 14 days").click()
    expect(page.get_by_role("status")).to_contain_text("3 decided, 0 skipped.")

    decisions = Decision.objects.select_related("account")
    assert sorted(d.account.external_id for d in decisions) == chosen
    assert {(d.action, d.duration_days, d.state) for d in decisions} == {("rate_limit", 14, Decision.State.ENFORCED)}
    notices = OutboxMessage.objects.filter(kind="email")
    assert notices.count() == 3
    assert OutboxMessage.objects.filter(kind="enforcement").count() == 3
    assert set(Account.objects.filter(enforcement_status="rate_limited").values_list("external_id", flat=True)) == (
        set(chosen))
    page.goto(f"/campaigns/{campaign.pk}/")
    expect(page.locator("input[name=accounts]")).to_have_count(3)  # decided ones are listed, not offered
    expect(page.get_by_text(re.compile(r"6 cases, 3 open\."))).to_be_visible()
