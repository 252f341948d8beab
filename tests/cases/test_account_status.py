"""An account's enforcement status is that of its own strongest action in force, never another account's
(kills the mutant of _account_status_refresh that drops ``account=account`` from its filter)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from reviewapp.cases.models import Account, Case
from reviewapp.cases.services.claims import case_claim
from reviewapp.cases.services.decisions import decision_record, decisions_lift_expired
from reviewapp.people.roles import Role
from tests.conftest import flag_payload
from tests.factories import ingest_and_group

pytestmark = pytest.mark.django_db
FACTS = "Between 20 and 21 November the account sent 1,200 templated prompts."


def decide(reviewer, case, clause, action, **kwargs):
    case_claim(reviewer=reviewer, case=case)
    return decision_record(reviewer=reviewer, case=case, clauses=[clause], action=action,
                           rationale="Templated prompts at scale.", facts_for_holder=FACTS, **kwargs)


@pytest.fixture
def two_cases(detector) -> tuple[Case, Case]:
    cases = {case.account.external_id: case for case in ingest_and_group(
        detector, [flag_payload(1, account_id="acct_strong"), flag_payload(2, account_id="acct_mild")])}
    return cases["acct_strong"], cases["acct_mild"]


def status(case: Case) -> str:
    return Account.objects.get(pk=case.account_id).enforcement_status


def test_each_account_shows_its_own_strongest_action_not_another_accounts(two_cases, policy, make_staff):
    reviewer = make_staff(Role.REVIEWER)
    strong, mild = two_cases
    decide(reviewer, strong, policy["extraction"], "suspend", duration_days=30)
    decide(reviewer, mild, policy["extraction"], "rate_limit", duration_days=2)
    assert (status(strong), status(mild)) == ("suspended", "rate_limited")
    # Lifting the mild account's action leaves it with nothing in force, whatever the other account has.
    assert decisions_lift_expired(now=timezone.now() + timedelta(days=3)) == 1
    assert (status(strong), status(mild)) == ("suspended", "none")
