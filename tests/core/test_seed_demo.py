"""`manage.py seed_demo`: a login for everyone the flows need, then the demo campaign's summary; idempotent; demo
mode only. The seeded people can walk every flow: a senior's severe decision approved by another senior, and
the appeal against it reviewed by a third who took no part."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command

from appeals.models import Appeal
from appeals.selectors import took_part
from appeals.services import appeal_claim, appeal_decide, appeal_file
from reviewapp.audit.models import AuditEvent
from reviewapp.cases.models import Account, Campaign, Case, Decision
from reviewapp.cases.services.claims import case_claim
from reviewapp.cases.services.decisions import decision_approve, decision_record
from reviewapp.people.demo import OWN_PASSWORD
from reviewapp.people.roles import Role
from reviewapp.people.selectors import role_of
from reviewapp.people.services import staff_password_change

pytestmark = pytest.mark.django_db
User = get_user_model()


def _seed() -> dict[str, str]:
    """Run seed_demo; each login line by its username (the first word)."""
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    *logins, summary = out.getvalue().strip().splitlines()
    assert summary.startswith("Demo data: ")
    return {line.split()[0]: line for line in logins}


@pytest.fixture
def demo_mode(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.DEMO_MODE = True


def test_seed_demo_gives_every_login_with_its_role_then_the_campaign_and_is_idempotent(demo_mode):
    first, second = io.StringIO(), io.StringIO()
    call_command("seed_demo", stdout=first)
    events = AuditEvent.objects.count()
    call_command("seed_demo", stdout=second)
    assert first.getvalue() == second.getvalue()
    assert AuditEvent.objects.count() == events

    *logins, summary = first.getvalue().strip().splitlines()
    assert len(logins) == User.objects.count() == 8
    for line in logins:  # username, role, one-time password
        username, *role, password = line.split()
        user = User.objects.get(username=username)
        assert user.check_password(password) and user.must_change_password  # chosen anew at first sign-in
        assert role_of(user).label == " ".join(role)
    roles = [role_of(u) for u in User.objects.all()]
    assert set(roles) == set(Role)
    assert roles.count(Role.REVIEWER) >= 2 and roles.count(Role.SENIOR_REVIEWER) >= 3

    assert f"{Account.objects.count()} flagged accounts" in summary
    assert f"{Case.objects.count()} cases" in summary
    assert f"{Campaign.objects.count()} campaigns" in summary
    assert Campaign.objects.count() >= 2


def test_a_password_its_owner_chose_is_kept_and_not_printed(demo_mode):
    username, line = next(iter(_seed().items()))
    user = User.objects.get(username=username)
    staff_password_change(user=user, old_password=line.split()[-1], new_password="my own long passphrase 42")
    again = _seed()
    assert again[username].endswith(OWN_PASSWORD) and line.split()[-1] not in again[username]
    user.refresh_from_db()
    assert user.check_password("my own long passphrase 42") and not user.must_change_password


def test_the_demo_has_a_person_for_every_flow(demo_mode, policy):
    """Four eyes and appeals need three seniors: one decides a severe action, another approves it, and a third,
    who took no part, reviews the holder's appeal against it. Two reviewers claim cases side by side."""
    _seed()
    seniors = list(User.objects.filter(groups__name=Role.SENIOR_REVIEWER).order_by("username"))
    reviewers = list(User.objects.filter(groups__name=Role.REVIEWER).order_by("username"))
    decider, approver, appeal_reviewer = seniors[:3]
    first, second, third = Case.objects.filter(state=Case.State.NEW).order_by("pk")[:3]
    case_claim(reviewer=reviewers[0], case=first)
    case_claim(reviewer=reviewers[1], case=second)

    case_claim(reviewer=decider, case=third)
    decision = decision_record(reviewer=decider, case=third, clauses=[policy["competing"]], action="terminate",
                               rationale="Outputs fed a competing model's training set.",
                               facts_for_holder="Your account sent 1,200 prompts filled from one template.")
    assert decision.state == Decision.State.AWAITING_APPROVAL
    with pytest.raises(PermissionDenied):
        decision_approve(approver=decider, decision=decision)  # never one's own
    decision_approve(approver=approver, decision=decision)
    decision.refresh_from_db()
    assert decision.state == Decision.State.ENFORCED and decision.approved_by == approver

    appeal = appeal_file(account=decision.account, decision=decision, grounds="We are a published research lab.")
    assert took_part(decider, decision) and took_part(approver, decision)
    for part_taker in (decider, approver):
        with pytest.raises(PermissionDenied):
            appeal_claim(reviewer=part_taker, appeal=appeal)
    assert not took_part(appeal_reviewer, decision)
    appeal_claim(reviewer=appeal_reviewer, appeal=appeal)
    appeal_decide(reviewer=appeal_reviewer, appeal=appeal, outcome="upheld", reason="The template share stands.")
    assert Appeal.objects.get(pk=appeal.pk).state == Appeal.State.DECIDED


def test_seed_demo_refuses_outside_demo_mode(settings):
    settings.DEMO_MODE = False
    settings.DEBUG = False
    with pytest.raises(CommandError, match="demo mode"):
        call_command("seed_demo", stdout=io.StringIO())
    assert not Account.objects.exists() and not User.objects.exists()
