"""account_profile_set: contact email, region and researcher-programme enrolment, each change audited."""

import pytest
from django.core.exceptions import ValidationError

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.selectors import chain_verify
from reviewapp.cases.models import Account
from reviewapp.cases.services import account_profile_set, accounts_ensure

pytestmark = pytest.mark.django_db


@pytest.fixture
def account() -> Account:
    pk = accounts_ensure(accounts={"acct_x_0001": "org_quillmere"})["acct_x_0001"]
    return Account.objects.get(pk=pk)


def profile_events():
    return AuditEvent.objects.filter(action=AuditAction.ACCOUNT_PROFILE_UPDATED).order_by("id")


def test_sets_the_fields_given_and_audits_what_changed(account, make_staff):
    admin = make_staff()
    updated = account_profile_set(actor=admin, account=account, contact_email="wren.ashby@example.com",
                                  region="eu-west", researcher_programme=True)
    account.refresh_from_db()
    assert (account.contact_email, account.region, account.researcher_programme) == (
        "wren.ashby@example.com", "eu-west", True)
    assert updated.researcher_programme
    event = profile_events().get()
    assert (event.target_type, event.target_id, event.actor_id) == ("cases.account", str(account.pk), str(admin.pk))
    assert event.data == {
        "account": "acct_x_0001",
        "changed": ["contact_email", "region", "researcher_programme"],
        "region": {"from": "", "to": "eu-west"},
        "researcher_programme": {"from": False, "to": True},
    }
    # The address never enters the append-only trail.
    assert "wren.ashby" not in str(event.data)
    assert chain_verify().ok


def test_none_leaves_a_field_alone_and_only_real_changes_are_named(account, make_staff):
    admin = make_staff()
    account_profile_set(actor=admin, account=account, region="eu-west", researcher_programme=True)
    account_profile_set(actor=admin, account=account, region="us-east", researcher_programme=True)
    account.refresh_from_db()
    assert account.region == "us-east" and account.researcher_programme and account.contact_email == ""
    assert profile_events().last().data == {"account": "acct_x_0001", "changed": ["region"],
                                             "region": {"from": "eu-west", "to": "us-east"}}


def test_a_call_that_changes_nothing_writes_no_event(account, make_staff):
    admin = make_staff()
    account_profile_set(actor=admin, account=account, region="eu-west")
    before = AuditEvent.objects.count()
    account_profile_set(actor=admin, account=account, region="eu-west", researcher_programme=False)
    account_profile_set(actor=admin, account=account)
    assert AuditEvent.objects.count() == before
    assert profile_events().count() == 1


def test_an_invalid_email_is_refused_and_nothing_is_written(account, make_staff):
    admin = make_staff()
    before = AuditEvent.objects.count()
    with pytest.raises(ValidationError) as refused:
        account_profile_set(actor=admin, account=account, contact_email="not an address", region="eu-west")
    assert "contact_email" in refused.value.message_dict
    account.refresh_from_db()
    assert account.contact_email == "" and account.region == ""
    assert AuditEvent.objects.count() == before
