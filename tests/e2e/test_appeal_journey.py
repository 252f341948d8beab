"""The whole appeal, in Chromium, with a REAL Celery worker delivering to a real SMTP server and a real
enforcement receiver.

A reviewer suspends an account (through the services). The notice email is read from the SMTP server; the
holder follows its sign-in link, reads the statement and appeals with a PDF attached. A senior reviewer who
took no part signs in, claims the appeal, reads the attachment and overturns the decision. The holder sees
the outcome in the portal and by email; the platform receives the reversal once; the account is free again.
"""

from __future__ import annotations

import email
import email.policy
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from appeals.models import Appeal
from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.cases.models import Account, Decision
from reviewapp.outbox.models import OutboxMessage
from reviewapp.people.roles import Role
from tests.appeals.review_fixtures import PASSWORD, PDF, decide, flagged_case
from tests.conftest import applied
from tests.support import wait_for

from .conftest import serious_accessibility_violations

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

GROUNDS = "We run the open evaluation harness of Example University; the prompts are its published benchmark."
REASON = "Your requests match the published benchmark of your enrolled programme; the suspension is lifted."


def _mails(smtp_server) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(e.original_content, policy=email.policy.default) for e in smtp_server.envelopes]


def _mail(smtp_server, subject: str, *, what: str) -> email.message.EmailMessage:
    """Wait for the email with this subject to reach the SMTP server; return it."""
    return wait_for(lambda: next((m for m in _mails(smtp_server) if m["Subject"] == subject), None),
                    timeout=30, what=what)


def _text(mail) -> str:
    return mail.get_body(("plain",)).get_content().replace("\r\n", "\n")


def test_a_holder_appeals_from_the_notice_email_and_an_uninvolved_senior_overturns(
        page, browser, live_server, settings, tmp_path, celery_worker, smtp_server, start_receiver, policy,
        make_staff):
    settings.PUBLIC_BASE_URL = live_server.url  # links in emails lead to this server
    settings.APPEAL_ATTACHMENTS_DIR = tmp_path / "appeal-attachments"
    platform = start_receiver(port=celery_worker.enforcement_port)
    dana = make_staff(Role.REVIEWER, username="dana")
    make_staff(Role.SENIOR_REVIEWER, username="olga")

    # A reviewer suspends the account; the worker applies it on the platform and mails the notice.
    decision = decide(flagged_case("template-miner", "acct_journey", email="lab@example.org"), reviewer=dana,
                      clauses=[policy["extraction"]])
    notice = _mail(smtp_server, "Decision about your account acct_journey: Suspension", what="the notice email")
    assert notice["To"] == "lab@example.org"
    link = re.search(r"^(http://\S+/appeals/signin/\S+/)$", _text(notice), re.MULTILINE).group(1)
    assert link.startswith(live_server.url)
    wait_for(lambda: [e for e in applied(platform.log_path) if e["event"] == "enforcement.apply"], timeout=30,
             what="the suspension to reach the platform")
    assert Account.objects.get(external_id="acct_journey").enforcement_status == "suspended"

    # The holder follows the link from the email, reads the statement, and appeals with a PDF attached.
    page.goto(link)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", level=1, name="Decisions about your account")).to_be_visible()
    page.get_by_role("link", name=f"Read statement of reasons no. {decision.statement.pk}").click()
    expect(page.get_by_role("heading", name="The facts we relied on")).to_be_visible()
    expect(page.get_by_text("1,200 prompts filled from one template")).to_be_visible()
    expect(page.get_by_text("Do not extract outputs at scale.")).to_be_visible()  # the clause text
    page.get_by_role("link", name="Appeal this decision").click()
    page.get_by_label("Why do you think the decision is wrong?").fill(GROUNDS)
    page.get_by_label("My account is part of the researcher access programme").check()
    page.get_by_label("Affiliation (optional)").fill("Example University")
    page.get_by_label("Files (optional)").set_input_files(
        [{"name": "enrolment.pdf", "mimeType": "application/pdf", "buffer": PDF}])
    page.get_by_role("button", name="File my appeal").click()
    expect(page.get_by_role("heading", name="We received your appeal")).to_be_visible()
    appeal = Appeal.objects.get(decision=decision)
    assert appeal.grounds == GROUNDS and appeal.researcher_claim and appeal.attachments.get().name == "enrolment.pdf"
    _mail(smtp_server, f"We received your appeal no. {appeal.pk}", what="the receipt email")

    # A senior reviewer who took no part signs in, claims the appeal from the queue and overturns it.
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    try:
        staff = context.new_page()
        staff.goto("/login/")
        staff.get_by_label("Username").fill("olga")
        staff.get_by_label("Password").fill(PASSWORD)
        staff.get_by_role("button", name="Sign in").click()
        expect(staff.get_by_role("heading", name="Welcome, olga")).to_be_visible()
        staff.wait_for_load_state("load")
        staff.keyboard.press("g")  # g l: the appeals queue
        staff.keyboard.press("l")
        expect(staff.get_by_role("heading", name="Appeals", exact=True)).to_be_visible()
        assert serious_accessibility_violations(staff) == []
        staff.get_by_role("button", name=f"Claim appeal {appeal.pk}").click()
        expect(staff.get_by_role("status")).to_contain_text(f"You claimed appeal {appeal.pk}")
        staff.reload()  # (axe on the page without the flash message: see test_reviewer_flow.py)
        assert serious_accessibility_violations(staff) == []
        expect(staff.get_by_text(GROUNDS)).to_be_visible()
        expect(staff.get_by_role("link", name=f"Case {decision.case_id}")).to_have_attribute(
            "href", f"/cases/{decision.case_id}/")

        with staff.expect_download() as download:
            staff.get_by_role("button", name="Download enrolment.pdf").click()
        assert download.value.suggested_filename == "enrolment.pdf"
        assert Path(download.value.path()).read_bytes() == PDF
        assert AuditEvent.objects.filter(action=AuditAction.ATTACHMENT_OPENED, actor_display="olga").count() == 1

        staff.get_by_label("Overturned: the decision is reversed").check()
        staff.get_by_label("Reasons for the holder").fill(REASON)
        staff.get_by_role("button", name="Record the outcome").click()
        expect(staff.get_by_role("status")).to_contain_text(f"Appeal {appeal.pk} decided: overturned")
        expect(staff.get_by_role("heading", name="Outcome: Overturned: the decision is reversed")).to_be_visible()
    finally:
        context.close()

    # The holder sees the outcome in the portal, and by email with the out-of-court options.
    page.get_by_role("link", name=f"Follow appeal no. {appeal.pk}").click()
    expect(page.get_by_role("heading", name="The outcome")).to_be_visible()
    expect(page.get_by_text("Decided: the decision is reversed")).to_be_visible()
    expect(page.get_by_text(REASON)).to_be_visible()
    outcome = _text(_mail(smtp_server, f"Your appeal no. {appeal.pk} is decided", what="the outcome email"))
    assert REASON in outcome and "Article 21 of the Digital Services Act" in outcome

    # The platform lifts the suspension, once; on our side the account is free.
    key = f"enforcement-reverse-{decision.pk}"
    wait_for(lambda: OutboxMessage.objects.filter(idempotency_key=key, state="delivered").exists(), timeout=30,
             what="the reversal to be delivered")
    [reversal] = [e for e in applied(platform.log_path) if e["idempotency_key"] == key]
    assert reversal["event"] == "enforcement.reverse" and reversal["payload"]["account_id"] == "acct_journey"
    assert Account.objects.get(external_id="acct_journey").enforcement_status == Account.EnforcementStatus.NONE
    assert Decision.objects.get(pk=decision.pk).state == Decision.State.REVERSED
