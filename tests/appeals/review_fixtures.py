"""Data for the appeal-review tests, built only with the real services: flags through ingestion and
grouping, claims, decisions, send-backs and approvals through the review services, appeals through
``appeals.services.appeal_file``. Import the fixtures you use into the test module by their function
names (``contested_fixture``); tests ask for them by their fixture names (``contested``).

(tests/appeals/conftest.py belongs to the holder-portal tests; these names do not collide with it.)
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from appeals.models import Appeal
from appeals.services import Upload, appeal_file
from reviewapp.cases.models import Case, Decision
from reviewapp.cases.services.claims import case_claim, case_release
from reviewapp.cases.services.decisions import decision_approve, decision_record, decision_send_back
from reviewapp.people.roles import Role
from tests.factories import DetectorFactory, FlaggedCaseFactory

PASSWORD = "correct horse battery"
HOLDER_EMAIL = "holder@example.org"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
FACTS = "Between 20 and 21 November your account sent 1,200 prompts filled from one template."


def flagged_case(detector_slug: str, account_id: str, *, email: str = HOLDER_EMAIL) -> Case:
    """One account's open case, from a real flag of ``detector_slug`` through ingestion and grouping."""
    return FlaggedCaseFactory(detector=DetectorFactory(slug=detector_slug), account_id=account_id,
                              contact_email=email)


def decide(case: Case, *, reviewer, clauses: list, action: str = "suspend", duration_days: int | None = 30,
           rationale: str = "Template share 94% across 1,200 prompts.") -> Decision:
    """The reviewer claims the case and records a decision (enforced at once unless it needs approval)."""
    case_claim(reviewer=reviewer, case=case)
    return decision_record(reviewer=reviewer, case=case, clauses=clauses, action=action, rationale=rationale,
                           facts_for_holder=FACTS if action != "no_violation" else "", duration_days=duration_days)


def file_appeal(decision: Decision, *, grounds: str = "We run a published evaluation harness; see the letter.",
                uploads: list[Upload] = (), **extra) -> Appeal:
    return appeal_file(account=decision.account, decision=decision, grounds=grounds, uploads=list(uploads), **extra)


@pytest.fixture(name="attachments_dir")
def attachments_dir_fixture(settings, tmp_path):
    """Appeal attachments land in this test's own directory (never .data/)."""
    settings.APPEAL_ATTACHMENTS_DIR = tmp_path / "appeal-attachments"
    return settings.APPEAL_ATTACHMENTS_DIR


@pytest.fixture(name="appeal_staff")
def appeal_staff_fixture(make_staff):
    """Everyone the separation-of-duties rules are about (seniors unless said otherwise)."""
    return SimpleNamespace(
        claimer=make_staff(Role.SENIOR_REVIEWER, username="cleo"),      # claimed the case, then released it
        decider=make_staff(Role.SENIOR_REVIEWER, username="dana"),      # decided it
        sender=make_staff(Role.SENIOR_REVIEWER, username="seth"),       # sent the first decision back
        approver=make_staff(Role.SENIOR_REVIEWER, username="ava"),      # approved the second
        outsider=make_staff(Role.SENIOR_REVIEWER, username="olga"),     # took no part
        other_senior=make_staff(Role.SENIOR_REVIEWER, username="otto"),  # took no part either
        reviewer=make_staff(Role.REVIEWER, username="rhea"),            # not a senior reviewer
        compliance=make_staff(Role.COMPLIANCE_OFFICER, username="cora"),
    )


@pytest.fixture(name="contested")
def contested_fixture(db, policy, appeal_staff, attachments_dir):
    """A severe decision with a full four-eyes history, enforced, and the holder's appeal against it.

    cleo claims the case and releases it; dana claims it and suspends the account under T-2 (which needs
    a second approver); seth sends it back; dana decides again; ava approves: the suspension is enforced,
    the statement issued and the notice queued. The holder then appeals with a PDF attached.
    """
    staff = appeal_staff
    case = flagged_case("template-miner", "acct_contested")
    case_claim(reviewer=staff.claimer, case=case)
    case_release(reviewer=staff.claimer, case=case, reason="conflict of interest")
    first = decide(case, reviewer=staff.decider, clauses=[policy["competing"]])
    decision_send_back(approver=staff.sender, decision=first, reason="Cite the usage numbers.")
    second = decision_record(reviewer=staff.decider, case=case, clauses=[policy["competing"]], action="suspend",
                             duration_days=30, rationale="Template share 94% across 1,200 prompts; cluster cg-1.",
                             facts_for_holder=FACTS)
    decision = decision_approve(approver=staff.approver, decision=second)
    decision.refresh_from_db()
    appeal = file_appeal(decision, researcher_claim=True, affiliation="Example University",
                         uploads=[Upload(name="letter.pdf", content_type="application/pdf", data=PDF)])
    return SimpleNamespace(case=case, decision=decision, appeal=appeal, staff=staff, account=decision.account,
                           sent_back=first)
