"""What GET /metrics exposes to Prometheus: the backlogs an operator watches to see a stall before a reviewer does.

Every value is read from the database when Prometheus scrapes, by one collector (``ReviewappCollector``) in a
registry of its own. So the numbers are the same whichever web worker answers (gunicorn runs several
processes, and a value kept in one process's memory would jump from scrape to scrape), and they survive
restarts. The counter of received flags is derived from the stored batch receipts, which are never deleted
(``flags_flagbatch``'s trigger), so it only grows, as a Prometheus counter must.

Cheap by construction: each section is one or two reads on an index that covers only the rows it counts (the
pending flags, the undelivered outbox, the unsequenced audit events, the open cases, the pending pushes), so a
scrape costs the same number of queries whatever the size of the tables (tests/core/test_metrics.py), and each
statement is cut off after ``STATEMENT_TIMEOUT_MS``. A section that fails (a timeout, a lock) is reported as
``reviewapp_metrics_section_up{section=…} 0`` and the others are still exposed: a scrape never fails with a 500.

Who may read it is ``metrics_access_allowed`` (README "Metrics").
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from ipaddress import ip_address

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Count, Min, Q
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from flags.grouping import oldest_pending_at, pending_count
from flags.partitions import flags_in_default_partition
from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.selectors import latest_checkpoint, oldest_unsequenced_at
from reviewapp.audit.sequencer import chain_head
from reviewapp.cases.models import Case, CaseState, open_case
from reviewapp.cases.vocabulary import Queue
from reviewapp.forum.models import ForumPush, PullCursor
from reviewapp.outbox.models import OutboxMessage
from reviewapp.people.addresses import client_ip

log = logging.getLogger(__name__)

# Each statement of a scrape; a read past it is a sign of trouble in itself (reported as the section down).
STATEMENT_TIMEOUT_MS = 2_000
# Claim latency is measured over the claims of this window (a sliding window: a gauge, not a histogram).
CLAIM_WINDOW = timedelta(minutes=15)
# A batch receipt received longer ago than this is folded into the process's running totals (see _Ingestion).
BATCH_SETTLED_AFTER = timedelta(minutes=10)


def _age(now: datetime, then: datetime | None) -> float:
    return max(0.0, (now - then).total_seconds()) if then else 0.0


# --- ingestion: flags received, by detector and outcome ---------------------------------------------------

# The batches after the process's watermark, summed per detector, split into those at or below the new
# watermark (folded into the running totals) and the rest (counted this scrape only). The new watermark is the
# last batch received more than BATCH_SETTLED_AFTER ago: a batch below it that was still uncommitted would have
# to belong to a transaction open that long, which ingestion never holds. The tail is a range of the primary
# key, so a scrape reads only the batches of the last minutes (the first scrape of a process reads them all once).
_BATCH_TAIL = """
WITH tail AS MATERIALIZED (
    SELECT id, received_at, detector_id, created, duplicates, conflicts, rejected
    FROM flags_flagbatch WHERE id > %(after)s
), edge AS (
    SELECT coalesce(max(id), %(after)s) AS upto FROM tail WHERE received_at < %(settled)s
)
SELECT coalesce(d.slug, ''), t.id <= edge.upto, edge.upto,
       sum(t.created), sum(t.duplicates), sum(t.conflicts), sum(t.rejected)
FROM tail t CROSS JOIN edge LEFT JOIN flags_detector d ON d.id = t.detector_id
GROUP BY 1, 2, 3
"""
OUTCOMES = ("created", "duplicate", "conflict", "rejected")


@dataclass
class _Ingestion:
    """This process's running totals of the settled batch receipts, and the last batch id they include."""

    upto: int = 0
    totals: dict[tuple[str, str], int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def read(self, cursor, now: datetime) -> dict[tuple[str, str], int]:
        with self.lock:
            cursor.execute(_BATCH_TAIL, {"after": self.upto, "settled": now - BATCH_SETTLED_AFTER})
            rows = cursor.fetchall()
            live, upto = dict(self.totals), self.upto
            for detector, folded, edge, *sums in rows:
                upto = max(upto, edge)
                for outcome, value in zip(OUTCOMES, sums, strict=True):
                    live[(detector, outcome)] = live.get((detector, outcome), 0) + int(value or 0)
                    if folded:
                        self.totals[(detector, outcome)] = self.totals.get((detector, outcome), 0) + int(value or 0)
            self.upto = upto
            return live


_ingestion = _Ingestion()


def ingestion_metrics(cursor, now: datetime) -> Iterator[Metric]:
    received = CounterMetricFamily(
        "reviewapp_flags_received", "Flags in detectors' batches since the deployment began, by detector and "
        "outcome (created; duplicate: a replay of a stored flag; conflict: same id, other content; rejected: "
        "failed the schema).", labels=["detector", "outcome"])
    for (detector, outcome), value in sorted(_ingestion.read(cursor, now).items()):
        received.add_metric([detector, outcome], value)
    yield received


# --- grouping: flags waiting for their case -------------------------------------------------------------

def grouping_metrics(cursor, now: datetime) -> Iterator[Metric]:
    # flags.grouping's own reads, on flags_pending_idx (set-aside flags are not pending).
    yield GaugeMetricFamily("reviewapp_flags_pending", "Stored flags not yet grouped into a case.",
                            value=pending_count())
    yield GaugeMetricFamily("reviewapp_flags_pending_oldest_age_seconds",
                            "How long the oldest flag without a case has waited (0 when none waits).",
                            value=_age(now, oldest_pending_at()))
    # Normally 0: beat's partition task keeps months ahead (flags/partitions.py). Flags here mean it did not run
    # across a month's start; they are stored and grouped all the same, and move on its next run.
    yield GaugeMetricFamily("reviewapp_flags_in_default_partition",
                            "Stored flags that found no month's partition and wait in flags_flag_default.",
                            value=flags_in_default_partition())


# --- the outbox: external effects not yet delivered -------------------------------------------------------

def outbox_metrics(cursor, now: datetime) -> Iterator[Metric]:
    # ``exclude(state=delivered)`` is outbox_undelivered_idx's own condition: only the backlog is read.
    rows = (OutboxMessage.objects.exclude(state=OutboxMessage.State.DELIVERED).order_by()
            .values("kind", "state")
            .annotate(n=Count("id"), oldest=Min("created_at"),
                      due=Min("next_attempt_at", filter=Q(state=OutboxMessage.State.PENDING,
                                                          next_attempt_at__lte=now)),
                      failing=Min("created_at", filter=Q(state=OutboxMessage.State.PENDING, attempts__gte=1))))
    messages = GaugeMetricFamily("reviewapp_outbox_messages", "Outbox messages not delivered, by kind and state "
                                 "(pending: waiting or in back-off; failed: gave up, needs a retry by staff).",
                                 labels=["kind", "state"])
    oldest = GaugeMetricFamily("reviewapp_outbox_oldest_age_seconds",
                               "Age of the oldest undelivered outbox message, by kind.", labels=["kind"])
    due = GaugeMetricFamily("reviewapp_outbox_oldest_due_seconds", "How long the longest-due pending message has "
                            "been due and not delivered, by kind (back-off is not counted).", labels=["kind"])
    # Back-off keeps a message whose peer is down from being due for long, so the due age alone misses an outage;
    # a message still failing long after it was queued shows it (as /healthz's outbox check, outbox.selectors).
    failing = GaugeMetricFamily("reviewapp_outbox_failing_oldest_age_seconds", "Age of the oldest pending message "
                                "that has failed at least once and is still being retried (its peer down or "
                                "refusing), by kind.", labels=["kind"])
    ages: dict[str, float] = {}
    dues: dict[str, float] = {}
    failings: dict[str, float] = {}
    for row in rows:
        messages.add_metric([row["kind"], row["state"]], row["n"])
        ages[row["kind"]] = max(ages.get(row["kind"], 0.0), _age(now, row["oldest"]))
        dues[row["kind"]] = max(dues.get(row["kind"], 0.0), _age(now, row["due"]))
        failings[row["kind"]] = max(failings.get(row["kind"], 0.0), _age(now, row["failing"]))
    for kind in sorted(ages):
        oldest.add_metric([kind], ages[kind])
        due.add_metric([kind], dues[kind])
        failing.add_metric([kind], failings[kind])
    yield from (messages, oldest, due, failing)


# --- queues: open cases, overdue, waiting for a claim -----------------------------------------------------

def queue_metrics(cursor, now: datetime) -> Iterator[Metric]:
    # Open cases only (cases_open_queue_idx's condition): decided and closed cases, the bulk, are never read.
    rows = (Case.objects.filter(open_case()).order_by().values("queue", "state")
            .annotate(n=Count("id"), overdue=Count("id", filter=Q(sla_due_at__lt=now)), oldest=Min("opened_at")))
    open_cases = GaugeMetricFamily("reviewapp_cases_open", "Cases not yet decided, by queue and state.",
                                   labels=["queue", "state"])
    overdue = GaugeMetricFamily("reviewapp_cases_overdue", "Open cases past their SLA (sla_due_at), by queue.",
                                labels=["queue"])
    waiting = GaugeMetricFamily("reviewapp_cases_unclaimed_oldest_age_seconds",
                                "How long the oldest new (never or no longer claimed) case of a queue has been open.",
                                labels=["queue"])
    counts = {(queue, state.value): 0 for queue in Queue.values for state in Case.OPEN_STATES}
    late = dict.fromkeys(Queue.values, 0)
    oldest_new = dict.fromkeys(Queue.values, 0.0)
    for row in rows:
        counts[(row["queue"], row["state"])] = row["n"]
        late[row["queue"]] = late.get(row["queue"], 0) + row["overdue"]
        if row["state"] == CaseState.NEW:
            oldest_new[row["queue"]] = _age(now, row["oldest"])
    for (queue, state), n in sorted(counts.items()):
        open_cases.add_metric([queue, state], n)
    for queue in sorted(late):
        overdue.add_metric([queue], late[queue])
        waiting.add_metric([queue], oldest_new.get(queue, 0.0))
    yield from (open_cases, overdue, waiting)


# The first claims of the window (not renewals, not a lapsed claim taken over), from their audit events on
# audit_created_idx (only the window's events are read), each joined to its case by primary key. The action is
# compared as an expression (``|| ''``) so the planner cannot take the action index instead: that one holds every
# claim ever made and grows for ever, the window's events do not. MATERIALIZED: the cast of target_id runs only on
# claim events, whose target is a case id.
_CLAIM_WAITS = """
WITH claims AS MATERIALIZED (
    SELECT e.target_id, e.created_at FROM audit_auditevent e
    WHERE e.created_at >= %(since)s AND e.action || '' = %(action)s AND e.target_type = 'cases.case'
      AND coalesce(e.data->>'renewed', 'false') <> 'true' AND e.data->>'taken_over_from' IS NULL
)
SELECT count(*),
       coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY w), 0),
       coalesce(percentile_cont(0.95) WITHIN GROUP (ORDER BY w), 0),
       coalesce(max(w), 0)
FROM (SELECT greatest(0, extract(epoch FROM claims.created_at - c.opened_at)) AS w
      FROM claims JOIN cases_case c ON c.id = claims.target_id::bigint) waits
"""


def claim_metrics(cursor, now: datetime) -> Iterator[Metric]:
    cursor.execute(_CLAIM_WAITS, {"since": now - CLAIM_WINDOW, "action": AuditAction.CASE_CLAIMED.value})
    n, p50, p95, worst = cursor.fetchone()
    minutes = int(CLAIM_WINDOW.total_seconds() // 60)
    yield GaugeMetricFamily("reviewapp_case_claims_recent", f"First claims of cases in the last {minutes} minutes.",
                            value=n)
    wait = GaugeMetricFamily("reviewapp_case_claim_wait_seconds", "Time from a case's opening to its first claim, "
                             f"over the claims of the last {minutes} minutes (0 when none).", labels=["quantile"])
    for quantile, value in (("0.5", p50), ("0.95", p95), ("1", worst)):
        wait.add_metric([quantile], float(value))
    yield wait


# --- Forum: pushes to trust groups and pulls from them ---------------------------------------------------

def forum_metrics(cursor, now: datetime) -> Iterator[Metric]:
    # One row per approved share, withdrawal or feedback: a small table, grouped whole.
    by_state = dict(ForumPush.objects.order_by().values_list("state").annotate(n=Count("id")))
    pushes = GaugeMetricFamily("reviewapp_forum_pushes", "Forum pushes by state (pending: not yet accepted by the "
                               "hub; partial, failed, refused: need an officer).", labels=["state"])
    for state in ForumPush.State.values:
        pushes.add_metric([state], by_state.get(state, 0))
    yield pushes
    oldest = (ForumPush.objects.filter(state=ForumPush.State.PENDING).order_by("created_at")  # forum_push_state_idx
              .values_list("created_at", flat=True).first())
    yield GaugeMetricFamily("reviewapp_forum_push_pending_oldest_age_seconds",
                            "Age of the oldest Forum push the hub has not yet accepted (0 when none).",
                            value=_age(now, oldest))
    pulls = GaugeMetricFamily("reviewapp_forum_last_pull_timestamp_seconds", "When each Forum collection was last "
                              "pulled successfully (Unix time; 0: never).", labels=["collection"])
    pulled = dict(PullCursor.objects.values_list("collection_id", "pulled_at"))  # one row per collection
    for collection in sorted(set(pulled) | set(_pulled_collections())):
        stamp = pulled.get(collection)
        pulls.add_metric([collection], stamp.timestamp() if stamp else 0.0)
    yield pulls


def _pulled_collections() -> list[str]:
    """The configured collections (FORUM_COLLECTIONS' keys are collection ids), so one never pulled shows 0."""
    return [str(collection) for collection in (getattr(settings, "FORUM_COLLECTIONS", None) or {})]


# --- the audit trail's tail -------------------------------------------------------------------------------

def audit_metrics(cursor, now: datetime) -> Iterator[Metric]:
    # All on indexes: the partial index of unsequenced events, seq's unique index for the head and the last
    # checkpoint (a backward walk from the head that stops at the first checkpoint event).
    yield GaugeMetricFamily("reviewapp_audit_events_unsequenced", "Committed audit events the sequencer has not "
                            "yet placed in the hash chain.", value=AuditEvent.objects.filter(seq__isnull=True).count())
    yield GaugeMetricFamily("reviewapp_audit_unsequenced_oldest_age_seconds",
                            "How long the oldest unsequenced audit event has waited (0 when none).",
                            value=_age(now, oldest_unsequenced_at()))
    head, _ = chain_head()
    checkpoint = latest_checkpoint()
    yield GaugeMetricFamily("reviewapp_audit_chain_head_seq", "Position of the last sequenced audit event.",
                            value=head)
    yield GaugeMetricFamily("reviewapp_audit_events_since_checkpoint", "Sequenced events after the last signed "
                            "checkpoint (not yet witnessed outside the database).",
                            value=head - (checkpoint.seq if checkpoint else 0))
    yield GaugeMetricFamily("reviewapp_audit_last_checkpoint_timestamp_seconds",
                            "When the last checkpoint was written (Unix time; 0: never).",
                            value=checkpoint.created_at.timestamp() if checkpoint else 0.0)


SECTIONS: dict[str, Callable[..., Iterable[Metric]]] = {
    "ingestion": ingestion_metrics,
    "grouping": grouping_metrics,
    "outbox": outbox_metrics,
    "queues": queue_metrics,
    "claims": claim_metrics,
    "forum": forum_metrics,
    "audit": audit_metrics,
}


class ReviewappCollector:
    """Reads every section at scrape time, in one read-only transaction bounded by STATEMENT_TIMEOUT_MS.

    Each section runs in its own savepoint: one that fails is rolled back and reported down, and the
    transaction goes on for the others.
    """

    def collect(self) -> Iterator[Metric]:
        started, now = time.monotonic(), timezone.now()
        up = GaugeMetricFamily("reviewapp_metrics_section_up", "1 when a section of this scrape was read, 0 when "
                               "its reads failed (see the web log).", labels=["section"])
        families: list[Metric] = []
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT current_setting('statement_timeout'), "
                               "set_config('statement_timeout', %s, true)", [str(STATEMENT_TIMEOUT_MS)])
                previous = cursor.fetchone()[0]
                for name, section in SECTIONS.items():
                    up.add_metric([name], self._read(name, section, cursor, now, families))
                # Put back what the caller's transaction had (set_config(…, true) would last until its end).
                cursor.execute("SELECT set_config('statement_timeout', %s, true)", [previous])
        except DatabaseError as exc:  # no connection at all: every section not yet read is down
            log.error("metrics: the database could not be read: %s", exc)
            read = {sample.labels["section"] for sample in up.samples}
            for name in SECTIONS:
                if name not in read:
                    up.add_metric([name], 0)
        yield from families
        yield up
        yield GaugeMetricFamily("reviewapp_metrics_scrape_duration_seconds",
                                "How long reading this scrape's values took.", value=time.monotonic() - started)

    @staticmethod
    def _read(name: str, section, cursor, now: datetime, families: list[Metric]) -> int:
        try:
            with transaction.atomic():
                families.extend(section(cursor, now))
        except DatabaseError as exc:
            log.error("metrics: section %s could not be read: %s", name, exc)
            return 0
        return 1


_registry = CollectorRegistry(auto_describe=False)
_registry.register(ReviewappCollector())


# The classic Prometheus text format, which generate_latest writes (and every Prometheus version reads).
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def metrics_exposition() -> bytes:
    """The Prometheus text exposition of every metric above."""
    return generate_latest(_registry)


# --- who may read /metrics -------------------------------------------------------------------------------

def _bearer(request) -> str:
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def metrics_access_allowed(request) -> bool:
    """A scrape with ``Authorization: Bearer $METRICS_TOKEN`` (when the token is set), or one from loopback.

    Loopback means the client itself, as reviewapp.people.addresses sees it. With no trusted proxy configured
    (TRUSTED_PROXY_HOPS = 0) a request carrying X-Forwarded-For came through a proxy on this host, whose own
    address is loopback for every client on the internet: it is refused unless it has the token.
    """
    expected = settings.METRICS_TOKEN
    given = _bearer(request)
    if expected and given and hmac.compare_digest(given.encode(), expected.encode()):
        return True
    if settings.TRUSTED_PROXY_HOPS <= 0 and request.META.get("HTTP_X_FORWARDED_FOR"):
        return False
    address = client_ip(request)
    try:
        return address is not None and ip_address(address).is_loopback
    except ValueError:
        return False
