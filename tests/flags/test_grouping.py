"""Grouping: each flag joins its account's one open case; clusters make campaigns; priority and SLA follow."""

import json
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction

from flags.grouping import flags_group
from flags.models import Flag
from flags.services import flags_ingest
from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.selectors import chain_verify
from reviewapp.audit.services import SYSTEM
from reviewapp.cases.models import Account, Campaign, Case
from reviewapp.cases.services import case_transition
from tests.conftest import flag_payload

pytestmark = pytest.mark.django_db


def ingest(detector, *flags):
    return flags_ingest(items=[(i, json.dumps(f).encode()) for i, f in enumerate(flags)], detector=detector,
                        actor=SYSTEM)


def group_all():
    total = 0
    while (run := flags_group(limit=7)).flags:
        total += run.flags
    return total


def test_flags_of_one_account_share_one_case(detector):
    ingest(detector, flag_payload(1, account_id="acct_a"), flag_payload(2, account_id="acct_a"),
           flag_payload(3, account_id="acct_b"))
    assert group_all() == 3
    a, b = Case.objects.get(account__external_id="acct_a"), Case.objects.get(account__external_id="acct_b")
    assert sorted(a.flags.values_list("external_id", flat=True)) == ["f-1", "f-2"]
    assert a.flag_count == 2 and b.flag_count == 1
    assert a.state == Case.State.NEW
    assert Account.objects.count() == 2


def test_later_flags_join_the_open_case_and_a_closed_case_is_not_reopened(detector):
    ingest(detector, flag_payload(1, account_id="acct_a"))
    group_all()
    first = Case.objects.get()
    ingest(detector, flag_payload(2, account_id="acct_a"))
    group_all()
    assert Case.objects.count() == 1 and first.flags.count() == 2
    case_transition(case=first, to=Case.State.CLOSED, actor=SYSTEM, reason="test")
    ingest(detector, flag_payload(3, account_id="acct_a"))
    group_all()
    assert Case.objects.count() == 2
    assert Case.objects.get(state=Case.State.NEW).flags.get().external_id == "f-3"


def test_grouping_twice_changes_nothing(detector):
    ingest(detector, *[flag_payload(n, account_id=f"acct_{n % 3}") for n in range(10)])
    assert group_all() == 10
    before = AuditEvent.objects.count()
    assert group_all() == 0
    assert AuditEvent.objects.count() == before
    assert not Flag.objects.filter(case__isnull=True).exists()


def test_one_open_case_per_account_is_enforced_by_the_database(detector):
    ingest(detector, flag_payload(1))
    group_all()
    case = Case.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        Case.objects.create(account=case.account, queue=case.queue, sla_due_at=case.sla_due_at)


def test_a_shared_cluster_id_links_cases_into_one_campaign(detector):
    ingest(detector, flag_payload(1, account_id="acct_a", cluster_id="c-7"),
           flag_payload(2, account_id="acct_b", cluster_id="c-7"),
           flag_payload(3, account_id="acct_c", cluster_id="c-8"),
           flag_payload(4, account_id="acct_d"))
    group_all()
    campaign = Campaign.objects.get(key="template-miner:c-7")
    assert sorted(campaign.cases.values_list("account__external_id", flat=True)) == ["acct_a", "acct_b"]
    assert Campaign.objects.count() == 2
    assert Case.objects.get(account__external_id="acct_d").campaign is None
    assert AuditEvent.objects.filter(action=AuditAction.CAMPAIGN_CREATED).count() == 2
    # Opened in its campaign: the case.opened event says which, and no separate link event is needed.
    opened = {e.data["account_id"]: e.data for e in AuditEvent.objects.filter(action=AuditAction.CASE_OPENED)}
    accounts = dict(Account.objects.values_list("external_id", "pk"))
    assert opened[accounts["acct_a"]]["campaign"] == "template-miner:c-7"
    assert opened[accounts["acct_c"]]["campaign"] == "template-miner:c-8"
    assert "campaign" not in opened[accounts["acct_d"]]
    assert opened[accounts["acct_b"]]["flags"] == ["f-2"]
    assert not AuditEvent.objects.filter(action=AuditAction.CASE_CAMPAIGN_LINKED).exists()


def test_an_open_case_joins_the_campaign_a_later_flag_names_once(detector):
    ingest(detector, flag_payload(1, account_id="acct_a"))
    group_all()
    case = Case.objects.get()
    ingest(detector, flag_payload(2, account_id="acct_a", cluster_id="c-7"),
           flag_payload(3, account_id="acct_b", cluster_id="c-7"))
    group_all()
    ingest(detector, flag_payload(4, account_id="acct_a", cluster_id="c-9"))
    group_all()
    case.refresh_from_db()
    assert case.campaign.key == "template-miner:c-7"  # the first campaign its flags named; it stays there
    linked = AuditEvent.objects.get(action=AuditAction.CASE_CAMPAIGN_LINKED)
    assert (linked.target_id, linked.data) == (str(case.pk), {"campaign": "template-miner:c-7"})
    assert Case.objects.get(account__external_id="acct_b").campaign == case.campaign


def test_priority_queue_and_sla_follow_the_signals(detector):
    ingest(detector, flag_payload(1, account_id="acct_a", signal="volume_anomaly", score=0.3, request_count=10))
    group_all()
    case = Case.objects.get()
    low_priority, low_due = case.priority, case.sla_due_at
    assert case.queue == "volume" and case.signals == ["volume_anomaly"]
    ingest(detector, flag_payload(2, account_id="acct_a", signal="reasoning_extraction", score=0.97,
                                  request_count=2_000_000, observed_to="2026-11-26T00:00:00Z"))
    group_all()
    case.refresh_from_db()
    assert case.queue == "extraction"
    assert case.signals == ["reasoning_extraction", "volume_anomaly"]
    assert case.priority > low_priority
    assert case.sla_due_at < low_due
    assert case.sla_due_at - case.opened_at <= timedelta(days=3)
    assert case.total_requests == 2_000_010 and case.max_score == 0.97


def test_every_grouping_is_audited_and_the_chain_holds(detector):
    ingest(detector, *[flag_payload(n, account_id=f"acct_{n % 4}") for n in range(12)])
    group_all()
    opened = AuditEvent.objects.filter(action=AuditAction.CASE_OPENED)
    assert sorted(int(e.target_id) for e in opened) == sorted(Case.objects.values_list("pk", flat=True))
    grouped = AuditEvent.objects.filter(action=AuditAction.FLAGS_GROUPED)
    assert sum(e.data["flags"] for e in grouped) == 12
    assert chain_verify().ok


def test_case_transitions_follow_the_table_and_are_audited(detector):
    from reviewapp.cases.workflow import InvalidCaseTransition

    ingest(detector, flag_payload(1))
    group_all()
    case = Case.objects.get()
    with pytest.raises(InvalidCaseTransition, match="cannot go from new to decided"):
        case_transition(case=case, to=Case.State.DECIDED, actor=SYSTEM)
    case = case_transition(case=case, to=Case.State.IN_REVIEW, actor=SYSTEM)
    event = AuditEvent.objects.filter(action=AuditAction.CASE_TRANSITIONED).get()
    assert event.data == {"from": "new", "to": "in_review", "reason": ""}
    assert case.state == Case.State.IN_REVIEW


def test_grouping_rewrites_a_case_in_place_when_its_indexed_columns_stay_and_the_table_leaves_room(detector):
    """Issue 8: a case update that changes no indexed column is heap-only (no new entry in the nine indexes) when
    its page has room, which cases_case's fillfactor keeps (migration cases 0006)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'cases_case'")
        assert cursor.fetchone()[0] == ["fillfactor=60"]
    flags_ingest(items=[(0, json.dumps(flag_payload(0, account_id="acct_hot", request_count=1000)).encode())],
                 detector=detector, actor=SYSTEM)
    flags_group()
    case = Case.objects.get(account__external_id="acct_hot")

    def hot_updates() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = 'cases_case'")
            return cursor.fetchone()[0]

    before = hot_updates()
    flags_ingest(items=[(1, json.dumps(flag_payload(1, account_id="acct_hot", request_count=1)).encode())],
                 detector=detector, actor=SYSTEM)
    flags_group()
    after = Case.objects.get(pk=case.pk)
    assert (after.flag_count, after.priority, after.queue) == (2, case.priority, case.queue)
    assert hot_updates() == before + 1
