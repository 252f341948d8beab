"""Issue 8, properties of grouping on real PostgreSQL: any flag the API accepts can be grouped, and whatever the
concurrency (grouping transactions at once, HTTP clients posting while two worker processes group), every case's
aggregates equal a recomputation from its flags."""

from __future__ import annotations

import json
import os
import threading
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest
from django.db import connection, connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flags.grouping import flags_group, pending_count
from flags.models import Flag, FlagSetAside
from flags.services import flags_ingest
from reviewapp.audit.services import SYSTEM
from reviewapp.cases.vocabulary import Signal
from tests.conftest import flag_payload
from tests.support import CeleryWorker, run_in_threads, wait_for

_RECOMPUTED = """
SELECT case_id, count(*), coalesce(sum(request_count), 0), max(score), max(observed_to),
       array_agg(DISTINCT signal ORDER BY signal)
FROM flags_flag WHERE case_id IS NOT NULL GROUP BY case_id
"""
_STORED = "SELECT id, flag_count, total_requests, max_score, last_observed_at, signals FROM cases_case"


def aggregates_disagree() -> dict[int, tuple]:
    """Cases whose stored aggregates differ from their flags': {case id: (stored, recomputed)}."""
    with connection.cursor() as cursor:
        cursor.execute(_RECOMPUTED)
        recomputed = {row[0]: (row[1], min(int(row[2]), 2**63 - 1), row[3], row[4], sorted(row[5]))
                      for row in cursor.fetchall()}
        cursor.execute(_STORED)
        stored = {row[0]: (row[1], row[2], row[3], row[4], sorted(row[5])) for row in cursor.fetchall()}
    return {case: (stored.get(case), recomputed.get(case)) for case in set(stored) | set(recomputed)
            if stored.get(case) != recomputed.get(case) and (recomputed.get(case) or stored[case][0])}


def ingest(detector, flags: list[dict]):
    return flags_ingest(items=[(i, json.dumps(f).encode()) for i, f in enumerate(flags)], detector=detector,
                        actor=SYSTEM)


# --- Any flag the API accepts can be grouped ----------------------------------------------------------

_examples = iter(range(10**9))


def uuid_like() -> str:
    """Examples share one transaction: keep each example's ids apart."""
    return f"p{os.getpid()}x{next(_examples)}"


def _instant(moment: datetime, offset_minutes: int) -> str:
    return moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes))).isoformat()


def _nested(depth: int) -> dict:
    value: dict = {"leaf": depth}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


# Anywhere Python can write, with the edges drawn often: near year 1 and year 9999 an offset moves the instant
# out of what Python (and so grouping) can read back, though PostgreSQL stores it.
_EDGES = [datetime(1, 1, 1, 0, 0, 1), datetime(9999, 12, 31, 23, 59, 59), datetime(1999, 12, 31, 23, 59, 59),
          datetime(2000, 1, 1), datetime(2099, 12, 31, 23, 59, 59), datetime(2100, 1, 1)]
moments = st.one_of(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
                    st.sampled_from(_EDGES))
offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59)
flag_fields = st.fixed_dictionaries({
    "observed_from": st.tuples(moments, offsets),
    "observed_to": st.tuples(moments, offsets),
    "request_count": st.one_of(st.none(), st.integers(min_value=0, max_value=2**63 - 1),
                               st.sampled_from([10**12, 2**62, 2**63 - 1])),
    "score": st.floats(min_value=0, max_value=1),
    "signal": st.sampled_from(Signal.values),
    "evidence_depth": st.one_of(st.none(), st.integers(min_value=1, max_value=40)),
    "account": st.integers(min_value=0, max_value=3),
})


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(flag_fields, min_size=1, max_size=12))
def test_any_flag_the_api_accepts_can_be_grouped(detector, batch):
    run = uuid_like()
    flags = []
    for i, spec in enumerate(batch):
        body = flag_payload(f"{run}-{i}", account_id=f"acct-{run}-{spec['account']}", score=spec["score"],
                            signal=spec["signal"], observed_from=_instant(*spec["observed_from"]),
                            observed_to=_instant(*spec["observed_to"]))
        body["request_count"] = spec["request_count"]
        if spec["evidence_depth"]:
            body["evidence"] = _nested(spec["evidence_depth"])
        flags.append(body)
    result = ingest(detector, flags)
    while flags_group(limit=5).taken:
        pass
    assert pending_count() == 0
    assert not FlagSetAside.objects.exists(), list(FlagSetAside.objects.values_list("reason", flat=True))
    stored = Flag.objects.filter(external_id__startswith=f"f-{run}-")
    assert stored.count() == result.created and not stored.filter(case__isnull=True).exists()
    assert aggregates_disagree() == {}


# --- Concurrent grouping transactions lose no update ---------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_concurrent_grouping_transactions_lose_no_update(detector):
    accounts, flags_per_account = 60, 40
    ingest(detector, [flag_payload(n, account_id=f"acct_{n % accounts}", request_count=n % 97 + 1,
                                   score=(n % 89) / 88, observed_to=f"2026-11-{21 + n % 7}T00:00:00Z",
                                   signal=Signal.values[n % len(Signal.values)])
                      for n in range(accounts * flags_per_account)])
    barrier = threading.Barrier(4)

    def group(_):
        try:
            barrier.wait()
            while flags_group(limit=30).taken or pending_count():
                pass
        finally:
            connections.close_all()

    run_in_threads(group, 4, timeout=300)
    assert pending_count() == 0
    assert aggregates_disagree() == {}


# --- Several HTTP clients while two worker processes group -------------------------------------------

def _post(url: str, token: str, flags: list[dict]) -> dict:
    request = urllib.request.Request(url, data=json.dumps({"flags": flags}).encode(), method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


@pytest.mark.worker
@pytest.mark.xdist_group("worker")
@pytest.mark.django_db(transaction=True)
def test_clients_posting_while_two_workers_group_keep_every_aggregate_exact(
        celery_worker, live_server, detector_token, artifacts_dir):
    second = CeleryWorker(celery_worker.env, artifacts_dir / f"celery-worker-second-{os.getpid()}.log",
                          concurrency=2, name=f"second-{os.getpid()}@%h").start()
    try:
        # Few accounts: every grouping batch (100 flags in the test workers) touches most of the cases, so
        # the workers' transactions overlap on the same case rows all the time.
        clients, batches, per_batch, accounts = 4, 4, 500, 10
        created = [0] * clients

        def client(c: int):
            for b in range(batches):
                base = (c * batches + b) * per_batch
                created[c] += _post(f"{live_server.url}/api/v1/flags/", detector_token, [
                    flag_payload(n, account_id=f"acct_{(n * 7919) % accounts}", request_count=n % 1000,
                                 score=(n % 101) / 100, signal=Signal.values[n % len(Signal.values)],
                                 observed_to=f"2026-11-{21 + n % 5}T00:00:00Z")
                    for n in range(base, base + per_batch)])["created"]

        run_in_threads(client, clients, timeout=300)
        total = clients * batches * per_batch
        assert sum(created) == total
        wait_for(lambda: not Flag.objects.filter(case__isnull=True).exists(), timeout=180,
                 what="the two workers to group every flag")
    finally:
        second.stop()
    assert Flag.objects.count() == total and not FlagSetAside.objects.exists()
    assert aggregates_disagree() == {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(DISTINCT case_id), count(DISTINCT account_external_id) FROM flags_flag")
        assert cursor.fetchone() == (accounts, accounts)
