"""The Celery application.

One queue per kind of work (DESIGN.md "Running"): ``ingest``, ``outbox``, ``forum``, ``maintenance``.
A task is routed by the app it lives in; a worker can serve all queues (``make run``) or only some
(production). Tasks are acknowledged late and rejected when their worker dies, one at a time, so a
killed worker never loses the task it held. Workers run a thread pool (``CELERY_WORKER_POOL`` in
settings says why not prefork), and beat queues a heartbeat that /healthz watches.
"""

import logging
import os

import celery.platforms
import kombu.transport
from celery import Celery
from celery.schedules import crontab
from celery.signals import beat_init, before_task_publish
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings.dev")

# With the setproctitle package installed (mutmut, a dev tool, brings it) Celery rewrites its processes'
# command lines to "[celeryd: …]", and then neither an operator's `pgrep -f "celery -A reviewapp worker"`
# nor make run's checks for leftover processes of a checkout find them. Keep the real command line.
celery.platforms._setproctitle = None

app = Celery("reviewapp")
app.config_from_object("django.conf:settings", namespace="CELERY")

# kombu's SQLAlchemy transport (the embedded default broker) sleeps its polling interval (1 s) between
# fetches, so a queue drains one task a second. It hands every transport option to SQLAlchemy's
# create_engine, so the interval cannot be passed as an option: the broker URL's transport is a subclass
# with a shorter default instead, which kombu imports only when the broker is that transport (importing
# SQLAlchemy cost every process, ingest_flags and gunicorn included, 0.2 s of start-up on a Redis broker).
for _alias in ("sqla", "sqlalchemy"):
    kombu.transport.TRANSPORT_ALIASES[_alias] = "reviewapp.sqla_transport:Transport"


HEARTBEAT_TASK = "reviewapp.core.tasks.heartbeat"
# Beat queues these every few seconds; their routine "sent / received / succeeded" lines would bury
# everything else `make run` prints. Warnings and failures are still logged.
ROUTINE_TASKS = (HEARTBEAT_TASK, "reviewapp.audit.tasks.sequence_audit_events", "audit-sequence", "core-heartbeat")


class _QuietRoutineTasks(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        message = record.getMessage()
        return not any(name in message for name in ROUTINE_TASKS)


for _logger in ("celery.beat", "celery.app.trace", "celery.worker.strategy"):
    logging.getLogger(_logger).addFilter(_QuietRoutineTasks())


@before_task_publish.connect
def _note_heartbeat_queued(sender: str | None = None, **kwargs) -> None:
    # Wherever a heartbeat is queued (beat), note when, so /healthz can tell how long it has waited.
    if sender == HEARTBEAT_TASK:
        from reviewapp.core.health import heartbeat_queued

        heartbeat_queued()


@beat_init.connect
def _forget_heartbeats_of_an_earlier_beat(**kwargs) -> None:
    # A heartbeat left unanswered when the stack last stopped says nothing about the workers starting now.
    from reviewapp.core.health import heartbeat_forget

    heartbeat_forget()


def queue_name(kind: str) -> str:
    from django.conf import settings

    return f"{settings.CELERY_QUEUE_PREFIX}{kind}"


@app.on_after_configure.connect
def _configure_queues(sender: Celery, **kwargs) -> None:
    from django.conf import settings

    sender.conf.task_queues = [Queue(queue_name(kind)) for kind in settings.CELERY_QUEUES]
    sender.conf.task_default_queue = queue_name("maintenance")
    sender.conf.task_routes = {
        # An exact name wins over the patterns (Celery's MapRoute): flags' one maintenance task.
        "flags.tasks.ensure_flag_partitions": {"queue": queue_name("maintenance")},
        "flags.*": {"queue": queue_name("ingest")},
        "reviewapp.cases.*": {"queue": queue_name("maintenance")},
        "appeals.*": {"queue": queue_name("outbox")},
        "reviewapp.forum.*": {"queue": queue_name("forum")},
        "reviewapp.audit.*": {"queue": queue_name("maintenance")},
        "reviewapp.outbox.*": {"queue": queue_name("outbox")},
        "reviewapp.core.*": {"queue": queue_name("maintenance")},
    }
    sender.conf.beat_schedule = {
        # /healthz's proof that a worker takes work; a heartbeat nobody took in time is useless, so it expires.
        "core-heartbeat": {
            "task": HEARTBEAT_TASK, "schedule": float(settings.HEALTH_HEARTBEAT_INTERVAL_SECONDS),
            "options": {"expires": settings.HEALTH_WORKER_MAX_SILENCE_SECONDS},
        },
        "cases-lapse-claims": {"task": "reviewapp.cases.tasks.lapse_claims", "schedule": 60.0},
        "cases-lift-expired": {"task": "reviewapp.cases.tasks.lift_expired_decisions", "schedule": 60.0},
        "flags-reconcile": {
            "task": "flags.tasks.reconcile_pending_flags",
            "schedule": settings.FLAGS_RECONCILE_INTERVAL,
        },
        # Next months' partitions of the flags table, created ahead (flags/partitions.py); daily is plenty with
        # three months ahead, and a run missed is the next one.
        "flags-partitions-ensure": {
            "task": "flags.tasks.ensure_flag_partitions", "schedule": crontab(hour=3, minute=17),
            "options": {"expires": 12 * 3600},
        },
        "outbox-reconcile": {
            "task": "reviewapp.outbox.tasks.reconcile_outbox",
            "schedule": settings.OUTBOX_RECONCILE_INTERVAL,
        },
        # The audit sequencer's backstop (reviewapp/audit/sequencer.py); a late run is useless, so it expires.
        "audit-sequence": {
            "task": "reviewapp.audit.tasks.sequence_audit_events", "schedule": 1.0, "options": {"expires": 5},
        },
        # Inbound Forum intelligence (reviewapp/forum/inbound.py): pull each collection after its cursor; fill the
        # matching indexes (local pseudonyms, flag simhashes) in between pulls too. A late run is useless.
        "forum-pull-inbound": {
            "task": "reviewapp.forum.tasks.pull_inbound", "schedule": float(settings.FORUM_PULL_INTERVAL_SECONDS),
            "options": {"expires": float(settings.FORUM_PULL_INTERVAL_SECONDS)},
        },
        # A Forum push whose outbox message gave up is re-armed, never left behind (forum.services).
        "forum-reconcile-pushes": {"task": "reviewapp.forum.tasks.reconcile_pushes", "schedule": 300.0},
        "forum-backfill-match-indexes": {
            "task": "reviewapp.forum.tasks.backfill_match_indexes", "schedule": 60.0, "options": {"expires": 60.0},
        },
        # Detector calibration (reviewapp/compliance/quality): raise an alert once when a detector version's overturn
        # rate crosses COMPLIANCE_OVERTURN_ALERT, clear it when it falls back; a late run is useless.
        "compliance-calibration-alerts": {
            "task": "reviewapp.compliance.quality.tasks.check_calibration_alerts",
            "schedule": float(settings.COMPLIANCE_CALIBRATION_CHECK_SECONDS),
            "options": {"expires": float(settings.COMPLIANCE_CALIBRATION_CHECK_SECONDS)},
        },
        # The retention purge (reviewapp/compliance/retention; DESIGN.md invariant 8): daily, batched, idempotent; a
        # run missed while beat was down is simply the next day's (it catches up on everything due by then).
        "compliance-retention-purge": {
            "task": "reviewapp.compliance.retention.tasks.purge_retention",
            "schedule": crontab(hour=settings.RETENTION_PURGE_HOUR, minute=settings.RETENTION_PURGE_MINUTE),
            "options": {"expires": 12 * 3600},
        },
        "audit-checkpoint": {  # every minute by default; a run that finds the chain idle writes nothing
            "task": "reviewapp.audit.tasks.audit_checkpoint",
            "schedule": settings.AUDIT_CHECKPOINT_INTERVAL,
            "options": {"expires": settings.AUDIT_CHECKPOINT_INTERVAL.total_seconds()},  # no backlog of late runs
        },
    }


app.autodiscover_tasks()
