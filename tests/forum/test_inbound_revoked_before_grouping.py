"""A peer revokes an inbound object whose forum flag is not in a case yet (issue 10): the flag is withdrawn and never
opens a case; if grouping is attaching it at that very moment, the case it opens is closed as "source withdrawn".
A real medallion hub holds the peer's objects; grouping is flags' own service, run here (ingestion's grouping task
is not queued: a session worker of an earlier test must not group these flags behind the test's back)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import transaction

from flags import tasks as flag_tasks
from flags.grouping import flags_group
from flags.models import Flag, FlagSetAside
from reviewapp.audit.models import AuditEvent
from reviewapp.cases.models import Account, Case
from reviewapp.forum.models import InboundMatch
from reviewapp.forum.pseudonyms import account_pseudonym
from tests.support import group_all_flags, no_task_grouper

from .test_inbound import T0, SecondLab, _post, _pull, _revoked
from .threads import started, waits_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def no_grouping_task(monkeypatch):
    monkeypatch.setattr(flag_tasks.group_pending_flags, "delay", lambda *args: None)
    with no_task_grouper():  # nor a task queued by an earlier test for a session worker in this process
        yield


def _pulled(forum_hub, world, *names: str):
    """Accounts known here only by name (no case), each listed in its own observed-data of the peer, pulled."""
    lab = SecondLab()
    accounts = [Account.objects.create(external_id=name) for name in names]
    listings = [lab.accounts([account_pseudonym(a.external_id)]) for a in accounts]
    _post(forum_hub, lab.bundle([o for listing in listings for o in listing]))
    _pull()
    flags = [Flag.objects.get(detector__slug="forum", account_external_id=a.external_id) for a in accounts]
    assert all(f.case_id is None for f in flags)
    return lab, accounts, [listing[-1] for listing in listings], flags


def test_revoked_before_grouping_the_flag_is_withdrawn_and_never_opens_a_case(forum_hub, world, no_grouping_task):
    lab, (revoked_one, kept_one), (observed, _), (flag, other_flag) = _pulled(
        forum_hub, world, "acct_peer_retracted", "acct_peer_stands")

    _post(forum_hub, lab.bundle([_revoked(observed, T0 + timedelta(days=2))]))
    assert _pull().revoked == 1
    match = InboundMatch.objects.get(account=revoked_one)
    assert match.withdrawn_at and "source withdrawn" in match.withdrawal_reason
    aside = FlagSetAside.objects.get(flag=flag)
    assert "source withdrawn" in aside.reason and "before it was grouped" in aside.reason
    event = AuditEvent.objects.get(action="forum.inbound_revoked")
    assert event.data["flags_kept_from_grouping"] == [flag.pk] and event.data["cases_closed"] == []

    group_all_flags()  # grouping runs: the flag that stands gets its case, the withdrawn one none
    other_flag.refresh_from_db()
    assert other_flag.case_id and Case.objects.get(pk=other_flag.case_id).account_id == kept_one.pk
    flag.refresh_from_db()
    assert flag.case_id is None
    assert not Case.objects.filter(account=revoked_one).exists()


def test_revoked_while_grouping_attaches_it_the_case_it_opens_is_closed(forum_hub, world, no_grouping_task):
    lab, (account,), (observed,), (flag,) = _pulled(forum_hub, world, "acct_grouped_meanwhile")
    _post(forum_hub, lab.bundle([_revoked(observed, T0 + timedelta(days=2))]))
    grouped, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def group_and_hold():
        with transaction.atomic():  # grouping's batch, its transaction not committed yet
            assert flags_group().flags == 1
            grouped.set()
            assert release.wait(60)

    grouping = started(group_and_hold, errors)
    assert grouped.wait(60)
    waits_for(grouping, release, _pull, errors, what="the revocation must wait for the grouping that holds the flag")

    flag.refresh_from_db()
    case = Case.objects.get(account=account)
    assert flag.case_id == case.pk and case.state == Case.State.CLOSED
    closed = AuditEvent.objects.filter(action="case.transitioned", target_id=str(case.pk)).last()
    assert "source withdrawn" in str(closed.data)
    assert not FlagSetAside.objects.filter(flag=flag).exists()
    assert AuditEvent.objects.get(action="forum.inbound_revoked").data["cases_closed"] == [case.pk]
