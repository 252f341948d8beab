"""GET /metrics: what Prometheus scrapes equals what is stored, only loopback or the token may read it, a part
that cannot be read never fails the scrape, and the scrape costs the same number of queries at any size."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pgtrigger
import psycopg
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from flags.models import Flag, FlagBatch
from flags.services import detector_ensure, flags_ingest
from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.services import SYSTEM, record
from reviewapp.cases.models import Case
from reviewapp.cases.services.claims import case_claim
from reviewapp.core import metrics
from reviewapp.forum.models import ForumPush, PullCursor
from reviewapp.outbox.models import OutboxMessage
from reviewapp.outbox.services import outbox_enqueue
from reviewapp.people.roles import Role
from tests.conftest import flag_payload
from tests.factories import FlaggedCaseFactory, ingest_and_group
from tests.support import ROOT, child_env, flag_received_at, sequence_audit

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_ingestion_totals(monkeypatch):
    """Each test starts from a process that has folded no batch receipts (they are rolled back after a test)."""
    monkeypatch.setattr(metrics, "_ingestion", metrics._Ingestion())


def scrape(client, **headers) -> dict[tuple[str, tuple], float]:
    """Every sample of one scrape, keyed by name and sorted labels."""
    response = client.get(reverse("metrics"), **headers)
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.content.decode())
            for sample in family.samples}


def value(samples, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def _ingest(detector, flags: list[bytes]):
    return flags_ingest(items=list(enumerate(flags)), detector=detector, actor=SYSTEM)


PAYLOADS = {"enforcement": {"event": "enforcement.apply", "decision_id": 1, "action": "suspend"},
            "email": {"to": ["holder@example.org"], "subject": "Your account", "body": "A decision was taken."}}


def _enqueue(key: str, *, kind: str = "enforcement", created_seconds_ago: float = 0, due_seconds_ago: float = 0):
    with transaction.atomic():
        message = outbox_enqueue(kind=kind, idempotency_key=key, payload=PAYLOADS[kind])
    now = timezone.now()
    OutboxMessage.objects.filter(pk=message.pk).update(created_at=now - timedelta(seconds=created_seconds_ago),
                                                       next_attempt_at=now - timedelta(seconds=due_seconds_ago))
    return message


# --- the values -------------------------------------------------------------------------------------------

def test_flags_waiting_for_a_case_and_the_oldest_ones_age(client, detector):
    result = _ingest(detector, [json.dumps(flag_payload(n)).encode() for n in (1, 2, 3)])
    assert result.created == 3
    with pgtrigger.ignore("flags.Flag:flags_read_only"):  # only to age one
        Flag.objects.filter(external_id="f-1").update(received_at=timezone.now() - timedelta(seconds=700))
    samples = scrape(client)
    assert value(samples, "reviewapp_flags_pending") == 3
    assert 700 <= value(samples, "reviewapp_flags_pending_oldest_age_seconds") < 760

    ingest_and_group(detector, [flag_payload(4)])  # grouping takes every pending flag, the three too
    samples = scrape(client)
    assert value(samples, "reviewapp_flags_pending") == 0
    assert value(samples, "reviewapp_flags_pending_oldest_age_seconds") == 0


def test_flags_received_by_detector_and_outcome(client, detector):
    other = detector_ensure(actor=SYSTEM, slug="volume-watch", name="Volume watch", owner_team="T&S")
    good = [json.dumps(flag_payload(n)).encode() for n in (1, 2, 3)]
    _ingest(detector, [*good, b'{"external_id": "broken"}'])
    _ingest(detector, [good[0]])  # a replay: a duplicate, not a new flag
    _ingest(other, [json.dumps(flag_payload(9, detector="volume-watch")).encode()])
    samples = scrape(client)
    assert value(samples, "reviewapp_flags_received_total", detector="template-miner", outcome="created") == 3
    assert value(samples, "reviewapp_flags_received_total", detector="template-miner", outcome="rejected") == 1
    assert value(samples, "reviewapp_flags_received_total", detector="template-miner", outcome="duplicate") == 1
    assert value(samples, "reviewapp_flags_received_total", detector="template-miner", outcome="conflict") == 0
    assert value(samples, "reviewapp_flags_received_total", detector="volume-watch", outcome="created") == 1


def test_settled_batches_are_folded_once_and_later_ones_still_counted(client, detector):
    """The counter reads only batches after the process's watermark: what it folded is counted once, on every
    later scrape, and batches after it are added as they arrive."""
    _ingest(detector, [json.dumps(flag_payload(n)).encode() for n in (1, 2)])
    FlagBatch.objects.update(received_at=timezone.now() - timedelta(minutes=20))  # settled
    for _ in range(2):
        samples = scrape(client)
        assert value(samples, "reviewapp_flags_received_total", detector="template-miner", outcome="created") == 2
    assert metrics._ingestion.upto == FlagBatch.objects.get().pk  # folded: later scrapes read after it

    _ingest(detector, [json.dumps(flag_payload(3)).encode()])
    for _ in range(2):
        samples = scrape(client)
        assert value(samples, "reviewapp_flags_received_total", detector="template-miner", outcome="created") == 3


def test_outbox_backlog_and_oldest_age_by_kind(client):
    _enqueue("ten-minutes", created_seconds_ago=600, due_seconds_ago=600)
    _enqueue("just-now")
    failed = _enqueue("gave-up", created_seconds_ago=30)
    OutboxMessage.objects.filter(pk=failed.pk).update(state=OutboxMessage.State.FAILED)
    delivered = _enqueue("delivered", created_seconds_ago=9_000, due_seconds_ago=9_000)
    OutboxMessage.objects.filter(pk=delivered.pk).update(state=OutboxMessage.State.DELIVERED)
    _enqueue("in-back-off", kind="email", created_seconds_ago=120, due_seconds_ago=-300)
    samples = scrape(client)
    assert value(samples, "reviewapp_outbox_messages", kind="enforcement", state="pending") == 2
    assert value(samples, "reviewapp_outbox_messages", kind="enforcement", state="failed") == 1
    assert ("reviewapp_outbox_messages", (("kind", "enforcement"), ("state", "delivered"))) not in samples
    assert 600 <= value(samples, "reviewapp_outbox_oldest_age_seconds", kind="enforcement") < 660  # not 9,000
    assert 600 <= value(samples, "reviewapp_outbox_oldest_due_seconds", kind="enforcement") < 660
    assert value(samples, "reviewapp_outbox_messages", kind="email", state="pending") == 1
    assert 120 <= value(samples, "reviewapp_outbox_oldest_age_seconds", kind="email") < 180
    assert value(samples, "reviewapp_outbox_oldest_due_seconds", kind="email") == 0  # in back-off: not due


def test_a_peer_down_shows_as_a_message_failing_long_after_it_was_queued_though_it_is_never_due(client):
    """Back-off keeps a failing message from being due for long (the due age misses an outage); the failing age
    does not: the oldest pending message that failed at least once, whatever its next try."""
    retried = _enqueue("peer-down", created_seconds_ago=3_600, due_seconds_ago=-60)  # an hour old, next try in 60 s
    OutboxMessage.objects.filter(pk=retried.pk).update(attempts=7)
    _enqueue("not-tried-yet", created_seconds_ago=7_200, due_seconds_ago=-60)  # older, but never failed
    _enqueue("fresh-email", kind="email", created_seconds_ago=30)
    samples = scrape(client)
    assert value(samples, "reviewapp_outbox_oldest_due_seconds", kind="enforcement") == 0  # not due: back-off
    assert 3_600 <= value(samples, "reviewapp_outbox_failing_oldest_age_seconds", kind="enforcement") < 3_660
    assert value(samples, "reviewapp_outbox_failing_oldest_age_seconds", kind="email") == 0  # never failed


def test_queue_depth_overdue_and_the_oldest_unclaimed_case(client, make_staff):
    late, on_time, claimed = (FlaggedCaseFactory() for _ in range(3))
    assert {late.queue, on_time.queue, claimed.queue} == {"extraction"}
    Case.objects.filter(pk=late.pk).update(sla_due_at=timezone.now() - timedelta(hours=1),
                                           opened_at=timezone.now() - timedelta(hours=30))
    case_claim(reviewer=make_staff(Role.REVIEWER), case=claimed)
    samples = scrape(client)
    assert value(samples, "reviewapp_cases_open", queue="extraction", state="new") == 2
    assert value(samples, "reviewapp_cases_open", queue="extraction", state="in_review") == 1
    assert value(samples, "reviewapp_cases_open", queue="volume", state="new") == 0
    assert value(samples, "reviewapp_cases_overdue", queue="extraction") == 1
    assert value(samples, "reviewapp_cases_overdue", queue="volume") == 0
    oldest_new = value(samples, "reviewapp_cases_unclaimed_oldest_age_seconds", queue="extraction")
    assert 30 * 3600 <= oldest_new < 30 * 3600 + 60


def test_claim_wait_over_recent_first_claims(client, make_staff):
    reviewer = make_staff(Role.REVIEWER)
    waited, quick = FlaggedCaseFactory(), FlaggedCaseFactory()
    Case.objects.filter(pk=waited.pk).update(opened_at=timezone.now() - timedelta(seconds=300))
    case_claim(reviewer=reviewer, case=waited)
    case_claim(reviewer=reviewer, case=quick)
    case_claim(reviewer=reviewer, case=Case.objects.get(pk=waited.pk))  # a renewal is not another claim
    samples = scrape(client)
    assert value(samples, "reviewapp_case_claims_recent") == 2
    assert 300 <= value(samples, "reviewapp_case_claim_wait_seconds", quantile="1") < 330
    assert value(samples, "reviewapp_case_claim_wait_seconds", quantile="0.5") == pytest.approx(
        (value(samples, "reviewapp_case_claim_wait_seconds", quantile="1") + quick_wait(quick)) / 2, abs=1)


def quick_wait(case) -> float:
    claimed = AuditEvent.objects.filter(action=AuditAction.CASE_CLAIMED, target_id=str(case.pk)).get()
    return (claimed.created_at - Case.objects.get(pk=case.pk).opened_at).total_seconds()


def test_forum_pushes_by_state_and_the_last_pull(client, settings):
    settings.FORUM_COLLECTIONS = {"frontier": {"name": "Frontier labs"}, "never-pulled": {"name": "Quiet group"}}
    now = timezone.now()
    for state, age in (("pending", 900), ("pending", 60), ("sent", 5_000), ("failed", 100)):
        ForumPush.objects.create(purpose="feedback", collection_id="frontier", state=state, bundle_sha256="0" * 64,
                                 created_at=now - timedelta(seconds=age))
    PullCursor.objects.create(collection_id="frontier", added_after="2026-12-01T00:00:00Z",
                              pulled_at=now - timedelta(minutes=7))
    samples = scrape(client)
    assert value(samples, "reviewapp_forum_pushes", state="pending") == 2
    assert value(samples, "reviewapp_forum_pushes", state="sent") == 1
    assert value(samples, "reviewapp_forum_pushes", state="failed") == 1
    assert value(samples, "reviewapp_forum_pushes", state="refused") == 0
    assert 900 <= value(samples, "reviewapp_forum_push_pending_oldest_age_seconds") < 960
    assert value(samples, "reviewapp_forum_last_pull_timestamp_seconds", collection="frontier") == pytest.approx(
        (now - timedelta(minutes=7)).timestamp())
    assert value(samples, "reviewapp_forum_last_pull_timestamp_seconds", collection="never-pulled") == 0


def test_audit_tail_unsequenced_and_since_the_last_checkpoint(client):
    record(actor=SYSTEM, action=AuditAction.AUDIT_CHECKPOINT, data={})
    sequence_audit()
    head = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    for _ in range(2):
        record(actor=SYSTEM, action=AuditAction.DETECTOR_CREATED, data={})
    sequence_audit()
    waiting = record(actor=SYSTEM, action=AuditAction.DETECTOR_CREATED, data={})  # not sequenced: no commit
    with pgtrigger.ignore("audit.AuditEvent:audit_append_only"):  # only to age it
        AuditEvent.objects.filter(pk=waiting.pk).update(created_at=timezone.now() - timedelta(seconds=90))
    samples = scrape(client)
    assert value(samples, "reviewapp_audit_events_unsequenced") == 1
    assert 90 <= value(samples, "reviewapp_audit_unsequenced_oldest_age_seconds") < 150
    assert value(samples, "reviewapp_audit_chain_head_seq") == head + 2
    assert value(samples, "reviewapp_audit_events_since_checkpoint") == 2
    assert value(samples, "reviewapp_audit_last_checkpoint_timestamp_seconds") > 0


# --- who may read it ---------------------------------------------------------------------------------------

def test_only_loopback_without_a_token(client, settings):
    settings.METRICS_TOKEN = ""
    assert scrape(client, REMOTE_ADDR="127.0.0.1")
    assert scrape(client, REMOTE_ADDR="::1")
    for headers in ({"REMOTE_ADDR": "203.0.113.9"},
                    # a proxy on this host: loopback to us, the internet behind it
                    {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9"},
                    {"REMOTE_ADDR": "203.0.113.9", "HTTP_AUTHORIZATION": "Bearer "}):
        response = client.get(reverse("metrics"), **headers)
        assert response.status_code == 403, headers
        assert b"reviewapp_" not in response.content


def test_the_bearer_token_opens_it_from_anywhere(client, settings):
    settings.METRICS_TOKEN = "s3cret-scrape-token"
    assert scrape(client, REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token")
    assert scrape(client, REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9",
                  HTTP_AUTHORIZATION="Bearer s3cret-scrape-token")
    for token in ("s3cret-scrape-toke", "wrong", ""):
        response = client.get(reverse("metrics"), REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 403
        assert b"reviewapp_" not in response.content
    response = client.get(reverse("metrics"), REMOTE_ADDR="203.0.113.9",
                          HTTP_AUTHORIZATION="Basic czNjcmV0LXNjcmFwZS10b2tlbg==")
    assert response.status_code == 403


def test_behind_trusted_proxies_the_forwarded_client_counts(client, settings):
    settings.METRICS_TOKEN, settings.TRUSTED_PROXY_HOPS = "", 1
    assert client.get(reverse("metrics"), REMOTE_ADDR="10.0.0.5",
                      HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 403
    assert scrape(client, REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="127.0.0.1")


# --- never a 500, and cheap -------------------------------------------------------------------------------

def test_a_section_that_times_out_is_reported_down_and_the_rest_is_served(client, monkeypatch):
    """The outbox table locked by another session: its read is cut off by the statement timeout, and the scrape
    still answers 200 with every other section."""
    monkeypatch.setattr(metrics, "STATEMENT_TIMEOUT_MS", 300)
    db = connection.settings_dict
    other = psycopg.connect(dbname=db["NAME"], user=db["USER"], password=db["PASSWORD"] or None,
                            host=db["HOST"] or None, port=db["PORT"] or None)
    try:
        other.execute("SET lock_timeout = '10s'")
        other.execute("LOCK TABLE outbox_outboxmessage IN ACCESS EXCLUSIVE MODE")
        samples = scrape(client)
    finally:
        other.rollback()
        other.close()
    assert value(samples, "reviewapp_metrics_section_up", section="outbox") == 0
    assert value(samples, "reviewapp_metrics_section_up", section="queues") == 1
    assert value(samples, "reviewapp_metrics_section_up", section="audit") == 1
    assert ("reviewapp_flags_pending", ()) in samples
    assert not any(name.startswith("reviewapp_outbox_") for name, _ in samples)
    # The caller's statement timeout is back as it was.
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] != "300ms"


def _seed(detector, make_staff, n: int, start: int) -> None:
    numbers = range(start, start + n)
    ingest_and_group(detector, [flag_payload(i) for i in numbers])  # n open cases
    reviewer = make_staff(Role.REVIEWER)
    for case in Case.objects.filter(state=Case.State.NEW).order_by("pk")[: n // 2]:
        case_claim(reviewer=reviewer, case=case)
    _ingest(detector, [json.dumps(flag_payload(f"p{i}")).encode() for i in numbers])  # n pending flags
    for i in numbers:
        _enqueue(f"message-{i}", kind=("enforcement", "email")[i % 2], created_seconds_ago=i)
    now = timezone.now()
    for i in numbers:
        ForumPush.objects.create(purpose="feedback", collection_id="frontier", state=("pending", "sent")[i % 2],
                                 bundle_sha256="0" * 64, created_at=now)


def _scrape_queries(client) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        scrape(client)
    return [query["sql"] for query in queries.captured_queries]


def test_the_scrape_costs_the_same_queries_with_10_or_100_rows(client, detector, make_staff):
    _seed(detector, make_staff, 10, start=1)
    few = _scrape_queries(client)
    _seed(detector, make_staff, 100, start=1000)  # grouping it takes the first seed's pending flags too
    assert Flag.objects.filter(case=None).count() == 100 and OutboxMessage.objects.count() == 110
    assert Case.objects.filter(state=Case.State.NEW).count() >= 50
    many = _scrape_queries(client)
    assert len(many) == len(few), "\n".join(many)
    # One to three reads a section (grouping: pending, oldest, the DEFAULT partition), and the statement timeout
    # set and put back (savepoints aside).
    assert len([sql for sql in few if "SAVEPOINT" not in sql]) <= 16


def test_no_read_of_a_scrape_walks_the_flags_outbox_or_audit_tables_whole(client, detector, make_staff):
    """Each read of the big tables is served by an index (EXPLAIN with sequential scans priced out: a query no
    index can serve still shows a Seq Scan)."""
    _seed(detector, make_staff, 10, start=1)
    reads = [sql for sql in _scrape_queries(client) if sql.lstrip().upper().startswith(("SELECT", "WITH"))
             and "set_config" not in sql]
    assert reads
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        for sql in reads:
            cursor.execute(f"EXPLAIN {sql}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
            for table in ("flags_flag", "flags_flagbatch", "outbox_outboxmessage", "audit_auditevent", "cases_case"):
                assert not re.search(rf"Seq Scan on {table}\b", plan), f"{sql}\n{plan}"


def test_without_the_database_every_section_is_down_and_the_scrape_still_answers():
    """A scrape against a database that does not answer: 200, each section 0, no 500 (a fresh process whose
    DATABASE_URL points at a closed port)."""
    script = ("import django; django.setup(); from django.test import Client;"
              "r = Client(HTTP_HOST='127.0.0.1').get('/metrics'); print(r.status_code); print(r.content.decode())")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env=child_env(DATABASE_URL="postgresql://postgres@127.0.0.1:9/nothing",
                                          CELERY_BROKER_URL="memory://"), check=True)
    status, _, body = result.stdout.partition("\n")
    assert status.strip() == "200", result.stdout[-2000:] + result.stderr[-2000:]
    ups = {sample.labels["section"]: sample.value for family in text_string_to_metric_families(body)
           for sample in family.samples if sample.name == "reviewapp_metrics_section_up"}
    assert ups == dict.fromkeys(metrics.SECTIONS, 0)



def test_flags_that_found_no_months_partition_are_counted(client, detector):
    """A flag received in a month with no partition yet (beat's partition task did not run) waits in the DEFAULT
    partition: the scrape says how many, so an operator sees it and runs ``manage.py flags_partitions``."""
    assert value(scrape(client), "reviewapp_flags_in_default_partition") == 0
    far = datetime(2031, 5, 10, tzinfo=UTC)  # past every partition the migrations and the task made
    for n in (1, 2):
        flag_received_at(detector, far, f"far-{n}")
    assert value(scrape(client), "reviewapp_flags_in_default_partition") == 2
