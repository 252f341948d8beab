"""Grouping survives a worker killed mid-way: after a restart every flag belongs to exactly one case."""

import json
from collections import defaultdict

import pytest
from django.db.models import Count

from flags.models import Flag
from flags.services import flags_ingest
from flags.tasks import reconcile_pending_flags
from reviewapp.audit.selectors import chain_verify
from reviewapp.audit.services import SYSTEM
from reviewapp.cases.models import Case
from tests.conftest import flag_payload
from tests.support import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.xdist_group("worker"), pytest.mark.django_db(transaction=True)]
FLAGS, ACCOUNTS = 6000, 1500


def test_kill_the_worker_while_it_groups_and_lose_nothing(celery_worker, detector):
    flags = [flag_payload(n, account_id=f"acct_{n % ACCOUNTS}", cluster_id=f"c-{n % 7}") for n in range(FLAGS)]
    for start in range(0, FLAGS, 2000):  # three commits, each enqueueing grouping in the real worker
        chunk = flags[start:start + 2000]
        result = flags_ingest(items=[(i, json.dumps(f).encode()) for i, f in enumerate(chunk)], detector=detector,
                              actor=SYSTEM)
        assert result.created == len(chunk)

    wait_for(lambda: Flag.objects.filter(case__isnull=False).exists(), timeout=60, interval=0.02,
             what="the worker to start grouping")
    celery_worker.kill()
    grouped_at_kill = Flag.objects.filter(case__isnull=False).count()
    assert 0 < grouped_at_kill < FLAGS, "the kill must land in the middle of grouping"

    celery_worker.start()
    reconcile_pending_flags.delay()  # what beat does every FLAGS_RECONCILE_INTERVAL
    wait_for(lambda: not Flag.objects.filter(case__isnull=True).exists(), timeout=120,
             what="every pending flag to be grouped after the restart")

    assert Flag.objects.count() == FLAGS
    cases_of_account = defaultdict(set)
    for account, case in Flag.objects.values_list("account_external_id", "case_id"):
        cases_of_account[account].add(case)
    assert len(cases_of_account) == ACCOUNTS
    assert all(len(cases) == 1 for cases in cases_of_account.values())
    assert Case.objects.count() == ACCOUNTS
    counted = dict(Case.objects.values_list("pk", "flag_count"))
    actual = dict(Flag.objects.values_list("case_id").annotate(n=Count("id")).values_list("case_id", "n"))
    assert counted == actual and sum(actual.values()) == FLAGS
    assert chain_verify().ok
