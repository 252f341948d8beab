"""In Chromium, the Forum pages a sharing officer and a senior reviewer use day to day, with data on every one: the
officer's home counts and the lists they link to (deliveries, withdrawals, matches awaiting review), shares, the
register and the inbound page, a second page of a paged list; a compliance officer's read of the inbound page, the
matches and the re-reviews (no form to act); the senior's re-reviews and a case page with a flag
withdrawn by its source. Each passes axe (no serious or critical violation). Screenshots in
test-artifacts/screenshots/forum-pages-*.png."""

from __future__ import annotations

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from reviewapp.forum import services, views
from reviewapp.forum.content import ShareChoice
from reviewapp.forum.models import ForumPush
from reviewapp.forum.previews import share_preview
from reviewapp.people.roles import Role
from tests.forum.conftest import FRONTIER, sharing_people, world  # noqa: F401 (fixtures)
from tests.forum.withdrawn_source import decided_case_with_withdrawn_source

from .conftest import serious_accessibility_violations

PASSWORD = "correct horse battery"


def _shot(page, artifacts_dir, name):
    shots = artifacts_dir / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / f"forum-pages-{name}.png"), full_page=True)


def _seed(made, people, monkeypatch):
    """Shares waiting, approved and withdrawn; pushes in each state; matches; a revoked source."""
    shares = []
    for _ in range(3):
        _account, case = made.account()
        shares.append(services.share_propose(proposer=people["reviewer"], source=case, collection_id=FRONTIER,
                                             choice=ShareChoice()))
    preview = share_preview(user=people["officer"], proposal=shares[1])
    services.share_approve(officer=people["officer"], proposal=shares[1], version_number=1,
                           bundle_sha256=preview.sha256)
    services.share_withdraw(officer=people["officer"], proposal=shares[2], reason="The cluster was wrong.")
    for state, error in (("failed", "hub answered 500"), ("partial", "1 object refused: duplicate"), ("sent", "")):
        ForumPush.objects.create(purpose="share", collection_id=FRONTIER, state=state, bundle_sha256="0" * 64,
                                 created_at=timezone.now(), last_error=error, success_count=1)
    waiting = decided_case_with_withdrawn_source(made, monkeypatch, external_id="acct_waiting_review",
                                                 simhash="1111111111111111", revoke=False, decided=False)
    withdrawn = decided_case_with_withdrawn_source(made, monkeypatch, external_id="acct_relied_on_it")
    return shares, waiting, withdrawn


@pytest.mark.django_db(transaction=True)
def test_the_officer_and_senior_pages_read_clearly_and_pass_axe(page, sign_in, artifacts_dir, world, sharing_people,  # noqa: F811
                                                               make_staff, monkeypatch):
    monkeypatch.setattr(views, "PAGE_SIZE", 2)  # a second page with little data
    shares, _waiting, withdrawn = _seed(world, sharing_people, monkeypatch)
    make_staff(Role.SENIOR_REVIEWER, username="sam-senior")
    failures = {}

    def visit(path: str, name: str, heading: str):
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_contain_text(heading)
        _shot(page, artifacts_dir, name)
        found = serious_accessibility_violations(page)
        if found:
            failures[path] = found

    sign_in("otto-officer", PASSWORD)
    visit("/", "officer-home", "Welcome")
    pending = page.get_by_role("link", name="deliveries to the hub pending")
    expect(pending).to_contain_text("1")
    pending.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Forum deliveries")
    expect(page.get_by_label("State")).to_have_value("pending")
    visit("/forum/pushes/", "pushes", "Forum deliveries")
    page.get_by_role("link", name="Older").click()
    expect(page.get_by_text("Page 2 of 2")).to_be_visible()
    visit("/forum/withdrawals/?days=7", "withdrawals", "What we withdrew")
    visit("/forum/matches/?awaiting=1", "matches", "awaiting review")
    expect(page.get_by_role("row").filter(has_text="acct_waiting_review")).to_have_count(1)
    visit("/forum/shares/", "shares", "Forum shares")
    visit(f"/forum/shares/{shares[0].pk}/", "share", f"Forum share {shares[0].pk}")
    visit("/forum/register/", "register", "Sharing register")
    visit("/forum/inbound/", "inbound", "Inbound intelligence")

    # A compliance officer reads what came in, its matches and the re-reviews, with no form to act on them.
    page.context.clear_cookies()
    sign_in("cora-compliance", PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Forum inbound").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Inbound intelligence")
    visit("/forum/inbound/", "compliance-inbound", "Inbound intelligence")
    expect(page.get_by_text("Sharing officers give feedback.").first).to_be_visible()
    expect(page.locator("form[action*='/feedback/']")).to_have_count(0)
    visit("/forum/matches/", "compliance-matches", "atches")
    expect(page.get_by_role("row").filter(has_text="acct_waiting_review")).to_have_count(1)
    visit("/forum/rereviews/", "compliance-rereviews", "Decisions to look at again")
    expect(page.get_by_text("a senior reviewer marks it done")).to_be_visible()
    expect(page.get_by_role("button", name=f"Mark case {withdrawn.case.pk} looked at again")).to_have_count(0)

    page.context.clear_cookies()
    sign_in("sam-senior", PASSWORD)
    visit("/", "senior-home", "Welcome")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Forum re-reviews").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Decisions to look at again")
    visit("/forum/rereviews/", "rereviews", "Decisions to look at again")
    page.get_by_label("What you found on looking again").fill("The template-miner flags carry it alone.")
    page.get_by_role("button", name=f"Mark case {withdrawn.case.pk} looked at again").click()
    expect(page.get_by_text("No decision waits for a fresh look.")).to_be_visible()
    visit(f"/cases/{withdrawn.case.pk}/", "case-withdrawn-flag", "Case")
    expect(page.get_by_text("Withdrawn by the source")).to_be_visible()
    assert not failures, failures
