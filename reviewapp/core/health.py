"""What /healthz reports: can we reach the database and the broker, and does work still flow?

Reaching the database and the broker is not enough: a worker can be alive and take nothing (its pool
blocked), and then flags wait for their case and messages for their delivery while everything answers.
So three more checks, each against a threshold from settings:

- ``worker``: beat queues a heartbeat task every HEALTH_HEARTBEAT_INTERVAL_SECONDS and notes when
  (``heartbeat_queued``); the worker that runs it clears the note (``heartbeat_answered``). A note
  older than HEALTH_WORKER_MAX_SILENCE_SECONDS means no worker took work for that long. Nothing
  queued (no beat, a fresh start) is not a stall.
- ``outbox``: how long the longest-waiting undelivered message has been *due* (back-off is waiting on
  purpose), and how long ago the oldest message that keeps failing was queued (its peer is down: back-off
  hides that from the first), each against HEALTH_OUTBOX_MAX_AGE_SECONDS.
- ``grouping``: how long the oldest flag without a case has waited (set-aside flags do not count),
  against HEALTH_PENDING_FLAG_MAX_AGE_SECONDS.
- ``audit``: how long the oldest committed audit event has waited for the sequencer to give it its place
  in the chain (until then no checkpoint covers it), against HEALTH_AUDIT_SEQUENCE_MAX_AGE_SECONDS.

Each check costs one indexed read or one cache read, so /healthz stays cheap enough for a load balancer.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from .database_unavailable import close_broken_connections

log = logging.getLogger(__name__)

HEARTBEAT_QUEUED_KEY = "health:heartbeat-queued"  # when the oldest unanswered heartbeat was queued
HEARTBEAT_ANSWERED_KEY = "health:heartbeat-answered"  # when a worker last ran one


@dataclass(frozen=True)
class Check:
    name: str
    state: str  # "ok", "down" (cannot reach it), "stalled" (past its threshold) or "unknown"
    detail: str = ""  # for the log only: anonymous callers get the names

    @property
    def ok(self) -> bool:
        return self.state == "ok"


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip()[:300]


def database_state() -> str | None:
    """None when healthy, else why not."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        close_broken_connections()  # the next probe connects afresh (core/database_unavailable.py)
        return _why(exc)
    return None


def broker_state(timeout: float = 3.0) -> str | None:
    from reviewapp.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as exc:
        return _why(exc)
    return None


# --- the worker heartbeat ---------------------------------------------------------------------------

def heartbeat_queued() -> None:
    """Note that a heartbeat was queued, unless an older one is still unanswered (that one counts)."""
    try:
        cache.add(HEARTBEAT_QUEUED_KEY, time.time(), timeout=None)
    except Exception as exc:  # queueing the heartbeat must not fail because the note could not be kept
        log.warning("health: could not note a queued heartbeat: %s", _why(exc))


def heartbeat_answered() -> None:
    """A worker ran a heartbeat: nothing is waiting for one any more."""
    cache.set(HEARTBEAT_ANSWERED_KEY, time.time(), timeout=None)
    cache.delete(HEARTBEAT_QUEUED_KEY)


def heartbeat_forget() -> None:
    """A new beat starts counting afresh (what an earlier one queued may have died with its stack)."""
    try:
        cache.delete(HEARTBEAT_QUEUED_KEY)
    except Exception as exc:
        log.warning("health: could not forget an earlier heartbeat: %s", _why(exc))


def worker_silence_seconds() -> float | None:
    """How long a queued heartbeat has waited for a worker; None when none is waiting."""
    queued = cache.get(HEARTBEAT_QUEUED_KEY)
    return None if queued is None else max(0.0, time.time() - queued)


def _seconds_ago(key: str) -> str:
    stamp = cache.get(key)
    return "never" if stamp is None else f"{time.time() - stamp:.0f} s ago"


def worker_check() -> Check:
    silence, limit = worker_silence_seconds(), settings.HEALTH_WORKER_MAX_SILENCE_SECONDS
    if silence is None or silence <= limit:
        return Check("worker", "ok")
    return Check("worker", "stalled", f"a heartbeat has waited {silence:.0f} s for a worker (limit {limit} s; "
                                      f"a worker last answered {_seconds_ago(HEARTBEAT_ANSWERED_KEY)})")


# --- work waiting -----------------------------------------------------------------------------------

def outbox_check() -> Check:
    from reviewapp.outbox.selectors import pending_waiting

    now = timezone.now()
    waiting, limit = pending_waiting(now=now), settings.HEALTH_OUTBOX_MAX_AGE_SECONDS
    age = 0.0 if waiting.due_since is None else (now - waiting.due_since).total_seconds()
    if age > limit:
        return Check("outbox", "stalled", f"an outbox message has been due for {age:.0f} s (limit {limit} s)")
    # Tried and failing since long ago: its peer is down (between tries it is in back-off, never due for long).
    failing = 0.0 if waiting.failing_since is None else (now - waiting.failing_since).total_seconds()
    if failing > limit:
        return Check("outbox", "stalled", f"an outbox message queued {failing:.0f} s ago is still failing (up to "
                                          f"{waiting.most_attempts} attempts; limit {limit} s): is its peer down?")
    return Check("outbox", "ok")


def grouping_check() -> Check:
    from flags.grouping import oldest_pending_age_seconds

    age, limit = oldest_pending_age_seconds(), settings.HEALTH_PENDING_FLAG_MAX_AGE_SECONDS
    if age <= limit:
        return Check("grouping", "ok")
    return Check("grouping", "stalled", f"a flag has waited {age:.0f} s for its case (limit {limit} s)")


def audit_check() -> Check:
    from reviewapp.audit.selectors import oldest_unsequenced_at

    oldest, limit = oldest_unsequenced_at(), settings.HEALTH_AUDIT_SEQUENCE_MAX_AGE_SECONDS
    age = 0.0 if oldest is None else (timezone.now() - oldest).total_seconds()
    if age <= limit:
        return Check("audit", "ok")
    return Check("audit", "stalled", f"an audit event has waited {age:.0f} s for the sequencer (limit {limit} s)")


def health_checks() -> list[Check]:
    """Every check, in the order /healthz lists them. Work checks are "unknown" without the database."""
    database, broker = database_state(), broker_state()
    checks = [Check("database", "down", database) if database else Check("database", "ok"),
              Check("broker", "down", broker) if broker else Check("broker", "ok")]
    for check in (worker_check, outbox_check, grouping_check, audit_check):
        name = check.__name__.removesuffix("_check")
        if database:
            checks.append(Check(name, "unknown", "the database is down"))
            continue
        try:
            checks.append(check())
        except Exception as exc:
            checks.append(Check(name, "unknown", _why(exc)))
    return checks
