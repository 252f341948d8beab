"""Verification of the audit trail from the browser (DESIGN.md invariant 1; issue 11 "The audit trail").

``verification_start`` (a compliance officer's POST) creates a VerificationRun and records
``compliance.verification_started`` in the same transaction, and queues ``tasks.run_verification`` after the
commit. That is a state change by a compliance officer, and an allowed one: the row belongs to the console,
and nothing of a case, decision, appeal, share or flag changes. ``verification_perform`` (the task) runs the
checks of ``manage.py verify_audit --checkpoints --witness`` with the same functions
(``audit.selectors.chain_verify``, ``audit.checkpoints.checkpoints_compare`` over the checkpoint file and the
witness's copies), writes its progress into the row as it goes, and stores and records the result
(``compliance.verification_finished``) in one transaction.

The result is one of: OK (intact, and every signed checkpoint here and at the witness agrees), BROKEN (the
first broken link, or a checkpoint the chain no longer matches: evidence of tampering), INCOMPLETE (intact,
but a comparison could not be made: no checkpoint yet, no witness configured or reachable — the command fails
closed on these too), FAILED (the run itself raised).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Greatest
from django.utils import timezone

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.checkpoints import (
    CheckpointCheck,
    WitnessUnavailable,
    checkpoint_file_entries,
    checkpoints_compare,
    witness_checkpoints,
)
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.selectors import chain_verify
from reviewapp.audit.services import SYSTEM, record

from .models import VerificationRun

logger = logging.getLogger(__name__)

VERIFY_PERMISSION = "audit.verify_chain"
# A run not finished after this long is taken to be lost (its worker died and the message with it): a new
# start is allowed. Until then a second start answers with the run under way.
RUN_STALE_AFTER = timedelta(minutes=30)
_START_LOCK_KEY = int.from_bytes(b"cmplvrfy", "big")
_MISMATCHES_KEPT = 20

Status = VerificationRun.Status


def run_under_way() -> VerificationRun | None:
    return (VerificationRun.objects.filter(status__in=[Status.QUEUED, Status.RUNNING],
                                           created_at__gte=timezone.now() - RUN_STALE_AFTER)
            .order_by("-pk").first())


def verification_start(*, officer) -> VerificationRun:
    """Start a verification run for a compliance officer; answer with the one under way if there is one.

    Raises PermissionDenied for anyone without ``audit.verify_chain``.
    """
    if not officer.has_perm(VERIFY_PERMISSION):
        raise PermissionDenied("Only compliance officers verify the audit chain.")
    with transaction.atomic():
        with connection.cursor() as cursor:  # two clicks at once start one run
            cursor.execute("SELECT pg_advisory_xact_lock(%s::bigint)", [_START_LOCK_KEY])
        under_way = run_under_way()
        if under_way is not None:
            return under_way
        run = VerificationRun.objects.create(started_by=officer)
        record(actor=officer, action=AuditAction.COMPLIANCE_VERIFICATION_STARTED, target=run, data={"run": run.pk})
        transaction.on_commit(lambda: _queue(run.pk))
    return run


def _queue(run_id: int) -> None:
    from .tasks import run_verification

    # The maintenance queue (reviewapp/celery.py routes this module there by default), named from the settings
    # at send time rather than when Celery was configured.
    run_verification.apply_async((run_id,), queue=f"{settings.CELERY_QUEUE_PREFIX}maintenance")


def _comparison(check: CheckpointCheck, head_seq: int, *, nothing_found: str) -> dict[str, Any]:
    """One comparison's outcome as stored: what ``verify_audit`` prints, as data (and fails closed on the same)."""
    mismatches = [{"seq": m.seq, "reason": m.reason} for m in check.mismatches]
    if mismatches:
        status, detail = "mismatch", mismatches[0]["reason"]
    elif check.last is None and head_seq > 0:
        status, detail = "none", f"{nothing_found}: none of the {head_seq} events is witnessed"
    else:
        plural = "s" if check.count != 1 else ""
        status, detail = "ok", f"the chain agrees with the {check.count} signed checkpoint{plural}"
    return {
        "status": status, "detail": detail, "count": check.count,
        "last_seq": check.last.seq if check.last else None, "last_at": check.last.at if check.last else None,
        "tail": check.tail(head_seq), "mismatches": mismatches[:_MISMATCHES_KEPT],
        "mismatch_count": len(mismatches),
    }


def _local_comparison(head_seq: int) -> dict[str, Any]:
    path, key = settings.AUDIT_CHECKPOINT_FILE, settings.AUDIT_CHECKPOINT_KEY
    if not key:
        return {"status": "not_configured",
                "detail": "AUDIT_CHECKPOINT_KEY is not set: the checkpoints' signatures cannot be checked"}
    check = checkpoints_compare(checkpoint_file_entries(path), key=key, head_seq=head_seq)
    return {**_comparison(check, head_seq, nothing_found=f"no checkpoint found in {path}"), "source": str(path)}


def _witness_comparison(head_seq: int) -> dict[str, Any]:
    url, key = settings.AUDIT_WITNESS_URL, settings.AUDIT_CHECKPOINT_KEY
    if not url:
        return {"status": "not_configured",
                "detail": "AUDIT_WITNESS_URL is not set: there is no witness to compare with"}
    if not key:
        return {"status": "not_configured",
                "detail": "AUDIT_CHECKPOINT_KEY is not set: the checkpoints' signatures cannot be checked"}
    try:
        entries = witness_checkpoints(url)
    except WitnessUnavailable as exc:
        return {"status": "unavailable", "detail": str(exc), "source": url}
    check = checkpoints_compare(entries, key=key, head_seq=head_seq, label="witness checkpoint")
    return {**_comparison(check, head_seq, nothing_found=f"no checkpoint found at the witness {url}"), "source": url}


def _checks(run_id: int) -> dict[str, Any]:
    def progress(count: int) -> None:
        VerificationRun.objects.filter(pk=run_id).update(
            events_checked=count, events_total=Greatest(F("events_total"), count))

    report = chain_verify(progress=progress)
    outcome: dict[str, Any] = {
        "events_checked": report.count, "head_seq": report.head_seq, "head_hash": report.head_hash,
        "unsequenced": report.unsequenced, "broken_seq": report.broken_seq, "reason": report.reason,
        "checkpoints": {}, "witness": {}, "unwitnessed": None,
    }
    if not report.ok:
        outcome["status"] = Status.BROKEN
        return outcome
    local, witness = _local_comparison(report.head_seq), _witness_comparison(report.head_seq)
    outcome.update(checkpoints=local, witness=witness)
    tails = [c["tail"] for c in (local, witness) if c["status"] == "ok"]
    outcome["unwitnessed"] = min(tails) if tails else report.head_seq
    mismatched = next((c for c in (local, witness) if c["status"] == "mismatch"), None)
    if mismatched:
        first = mismatched["mismatches"][0]
        outcome.update(status=Status.BROKEN, broken_seq=first["seq"], reason=first["reason"])
    elif local["status"] != "ok" or witness["status"] != "ok":
        outcome["status"] = Status.INCOMPLETE
    else:
        outcome["status"] = Status.OK
    return outcome


def verification_perform(*, run_id: int) -> VerificationRun:
    """The task's work: run the checks, report progress into the row, store and record the result.

    A redelivered task (its worker died mid-run: late acknowledgement) starts the run over once the run has
    been running for RUN_STALE_AFTER; one that finds it finished, or running for less, does nothing.
    """
    total = AuditEvent.objects.filter(seq__isnull=False).count()
    now = timezone.now()
    # Claimed in one statement: a queued run, or one whose worker has not been heard of for RUN_STALE_AFTER
    # (a delivery of the same task while the first still works on it finds it running, and leaves it).
    claimed = VerificationRun.objects.filter(
        Q(status=Status.QUEUED) | Q(status=Status.RUNNING, began_at__lt=now - RUN_STALE_AFTER), pk=run_id,
    ).update(status=Status.RUNNING, began_at=now, events_total=total, events_checked=0)
    if not claimed:
        return VerificationRun.objects.get(pk=run_id)
    try:
        outcome = _checks(run_id)
    except Exception as exc:  # the run's own failure is its result, stored and audited like any other
        logger.exception("verification run %s failed", run_id)
        outcome = {"status": Status.FAILED, "reason": f"{type(exc).__name__}: {exc}"}
    return _finish(run_id, outcome)


@transaction.atomic
def _finish(run_id: int, outcome: dict[str, Any]) -> VerificationRun:
    run = VerificationRun.objects.select_for_update().get(pk=run_id)
    for name, value in outcome.items():
        setattr(run, name, value)
    run.events_total = max(run.events_total, run.events_checked)
    run.finished_at = timezone.now()
    run.save()
    record(actor=SYSTEM, action=AuditAction.COMPLIANCE_VERIFICATION_FINISHED, target=run, data={
        "run": run.pk, "started_by": run.started_by_id, "status": run.status, "events_checked": run.events_checked,
        "head_seq": run.head_seq, "broken_seq": run.broken_seq, "reason": run.reason,
        "checkpoints": run.checkpoints.get("status", ""), "witness": run.witness.get("status", ""),
        "unwitnessed": run.unwitnessed,
    })
    return run
