"""Grouping in partitions of the accounts: concurrent groupers never share an account (so never wait for
each other's transaction), every partition gets grouped, and a campaign two groupers meet at once is
created, and audited, once."""

import json
import threading

import psycopg
import pytest
from django.core.cache import cache
from django.db import connection

from flags import tasks
from flags.grouping import Partition, flags_group, pending_in
from flags.models import Flag
from flags.services import flags_ingest
from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.services import SYSTEM
from reviewapp.cases.models import Campaign, Case
from tests.conftest import flag_payload
from tests.support import no_task_grouper


def ingest(detector, *flags):
    return flags_ingest(items=[(i, json.dumps(f).encode()) for i, f in enumerate(flags)], detector=detector,
                        actor=SYSTEM)


def _accounts(*, pending: bool) -> set[str]:
    return set(Flag.objects.filter(case__isnull=pending).values_list("account_external_id", flat=True))


@pytest.mark.django_db
def test_a_partition_takes_only_its_accounts_and_the_partitions_cover_every_flag(detector):
    ingest(detector, *[flag_payload(n, account_id=f"acct_{n % 40}") for n in range(120)])
    run = flags_group(limit=1000, partition=Partition(0, 2))
    grouped, pending = _accounts(pending=False), _accounts(pending=True)
    assert grouped and pending and not grouped & pending  # no account is in both partitions
    assert run.flags == Flag.objects.filter(case__isnull=False).count()
    assert not pending_in(Partition(0, 2)) and pending_in(Partition(1, 2))
    flags_group(limit=1000, partition=Partition(1, 2))
    assert not Flag.objects.filter(case__isnull=True).exists()
    assert Case.objects.count() == 40


def _hold(part: int) -> psycopg.Connection:
    """Another session holding partition ``part`` of 2, as a grouper in another worker would."""
    db = connection.settings_dict
    other = psycopg.connect(dbname=db["NAME"], user=db["USER"], password=db["PASSWORD"] or None,
                            host=db["HOST"] or None, port=db["PORT"] or None, autocommit=True)
    other.execute("SELECT pg_advisory_lock(%s, %s)", [tasks._PARTITION_LOCK_CLASS, part])
    return other


@pytest.mark.django_db
def test_the_task_leaves_a_held_partition_to_its_holder_and_sequences_what_it_grouped(detector, settings,
                                                                                      monkeypatch):
    settings.FLAGS_GROUP_PARTITIONS = 2
    enqueued = []
    monkeypatch.setattr(tasks.group_pending_flags, "delay", lambda *args: enqueued.append(args))
    cache.delete(tasks.QUEUED_KEY)
    ingest(detector, *[flag_payload(n, account_id=f"acct_{n % 40}") for n in range(120)])
    other = _hold(1)
    try:
        grouped = tasks.group_pending_flags()
        assert 0 < grouped < 120
        assert pending_in(Partition(1, 2)) and not pending_in(Partition(0, 2))
        assert enqueued  # it asked for a grouper for the partition it could not take
        # Its batches' events were sequenced once, at its end, not left for beat.
        assert not AuditEvent.objects.filter(seq__isnull=True).exists()
    finally:
        other.close()
    assert tasks.group_pending_flags() == 120 - grouped
    assert not Flag.objects.filter(case__isnull=True).exists()


@pytest.mark.django_db
def test_a_task_that_finds_nothing_pending_queues_no_other(detector, settings, monkeypatch):
    """On an idle stack a grouping task ends the chain: it asked for another grouper for each partition it took
    whether or not it held work, so each empty task queued the next (hundreds of empty tasks a minute)."""
    settings.FLAGS_GROUP_PARTITIONS = 4
    enqueued = []
    monkeypatch.setattr(tasks.group_pending_flags, "delay", lambda *args: enqueued.append(args))
    cache.delete(tasks.QUEUED_KEY)
    ingest(detector, *[flag_payload(n, account_id=f"acct_{n % 8}") for n in range(16)])
    assert tasks.group_pending_flags() == 16  # work in some partitions: others may be asked for meanwhile
    enqueued.clear()
    cache.delete(tasks.QUEUED_KEY)
    assert tasks.group_pending_flags() == 0
    assert enqueued == []


@pytest.fixture
def no_task_grouping():
    """Nor a grouping task already queued by an earlier test, for a session worker left in this process."""
    with no_task_grouper():
        yield


@pytest.mark.django_db(transaction=True)
def test_two_groupers_at_once_create_each_campaign_once_and_add_up(detector, monkeypatch, no_task_grouping):
    # Only the two groupers below group: no task for a session worker (an earlier test's) to take flags with.
    monkeypatch.setattr(tasks.group_pending_flags, "delay", lambda *args: None)
    ingest(detector, *[flag_payload(n, account_id=f"acct_{n % 60}", cluster_id=f"c-{n % 3}", request_count=n)
                       for n in range(300)])
    barrier, errors = threading.Barrier(2), []

    def grouper(part: int) -> None:
        try:
            barrier.wait()
            while flags_group(limit=25, partition=Partition(part, 2)).taken:
                pass
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=grouper, args=(part,)) for part in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert not Flag.objects.filter(case__isnull=True).exists()
    assert Campaign.objects.count() == 3
    created = AuditEvent.objects.filter(action=AuditAction.CAMPAIGN_CREATED)
    assert sorted(e.data["key"] for e in created) == sorted(Campaign.objects.values_list("key", flat=True))
    for case in Case.objects.all():
        flags = Flag.objects.filter(case=case)
        assert (case.flag_count, case.total_requests) == (flags.count(), sum(f.request_count for f in flags))
