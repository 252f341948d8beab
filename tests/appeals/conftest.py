"""Holder-portal fixtures: accounts with an enforced decision and its statement of reasons, made only with
the real services (flags through ingestion and grouping, a claim, a decision), and sign-in links.

``holder`` is account A, the one signed in; ``other_holder`` is account B, with its own decision, an appeal
and an attachment, for the IDOR probes. (The appeal-review fixtures live in review_fixtures.py.)
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest

from appeals.models import Appeal, AppealAttachment
from appeals.services import Upload, appeal_file
from reviewapp.cases.holders import holder_link_issue
from reviewapp.cases.models import Account, Decision, HolderLink, StatementOfReasons
from reviewapp.cases.services.claims import case_claim
from reviewapp.cases.services.decisions import decision_record
from reviewapp.people.roles import Role
from tests.factories import FlaggedCaseFactory

FACTS = "On 20 November the account sent 1,200 prompts filled from one template."
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@dataclass
class Holder:
    account: Account
    decision: Decision
    statement: StatementOfReasons
    appeal: Appeal | None = None
    attachment: AppealAttachment | None = None


def enforced_decision(detector, make_staff, clause, *, account_id: str, email: str, action: str = "suspend",
                      duration_days: int | None = 30) -> Holder:
    """A flag for ``account_id`` through ingestion and grouping; a reviewer claims the case and decides it
    under ``clause``: enforced at once, with its statement of reasons and the notice queued."""
    case = FlaggedCaseFactory(detector=detector, account_id=account_id, contact_email=email,
                              flag={"evidence": {"excerpts": ["Solve step by step: {problem}"]}})
    reviewer = make_staff(Role.REVIEWER)
    case_claim(reviewer=reviewer, case=case)
    decision = decision_record(reviewer=reviewer, case=case, clauses=[clause], action=action,
                               duration_days=duration_days, rationale="Extraction at scale.", facts_for_holder=FACTS)
    decision = Decision.objects.select_related("account", "statement").get(pk=decision.pk)
    assert decision.state == Decision.State.ENFORCED
    return Holder(account=decision.account, decision=decision, statement=decision.statement)


def sign_in_path(account: Account) -> str:
    """The path of a fresh sign-in link for the account, as the notice email carries it."""
    return urlsplit(holder_link_issue(account=account, purpose=HolderLink.Purpose.NOTICE)).path


@pytest.fixture
def portal_attachments(settings, tmp_path):
    """Attachments land in this test's own directory (never .data/)."""
    settings.APPEAL_ATTACHMENTS_DIR = tmp_path / "portal-attachments"
    return settings.APPEAL_ATTACHMENTS_DIR


@pytest.fixture
def holder(detector, policy, make_staff, portal_attachments) -> Holder:
    """Account A: suspended for 30 days under T-1 (a 180-day appeal window); contact holder@example.com."""
    return enforced_decision(detector, make_staff, policy["extraction"], account_id="acct_a",
                             email="holder@example.com")


@pytest.fixture
def other_holder(detector, policy, make_staff, portal_attachments) -> Holder:
    """Account B: its own decision, statement, appeal and attachment; none of it is A's to see."""
    other = enforced_decision(detector, make_staff, policy["extraction"], account_id="acct_b",
                              email="other@example.com", action="warn", duration_days=None)
    other.appeal = appeal_file(account=other.account, decision=other.decision, grounds="B's own grounds.",
                               uploads=[Upload(name="b-letter.pdf", content_type="application/pdf", data=PDF)])
    other.attachment = other.appeal.attachments.get()
    return other


@pytest.fixture
def signed_in(client, holder):
    """The test client, signed in as account A through a real link."""
    response = client.post(sign_in_path(holder.account))
    assert response.status_code == 302
    return client
