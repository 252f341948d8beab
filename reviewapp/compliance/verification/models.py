from django.conf import settings
from django.db import models


class VerificationRun(models.Model):
    """One verification of the audit trail started from the console: the checks of
    ``manage.py verify_audit --checkpoints --witness``, run by a Celery task that reports its progress here.

    A console-only row: starting a run changes no case, decision, appeal, share or flag (compliance officers
    change nothing of the records), and both its start and its result are audit events.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        OK = "ok", "OK"  # the chain is intact and agrees with every signed checkpoint, here and at the witness
        BROKEN = "broken", "Broken"  # a broken link, or a checkpoint the chain no longer matches
        # intact, but a comparison could not be made (no checkpoint yet, no witness configured or reachable)
        INCOMPLETE = "incomplete", "Incomplete"
        FAILED = "failed", "Failed"  # the run itself failed (an error, not a finding about the chain)

    FINISHED = (Status.OK, Status.BROKEN, Status.INCOMPLETE, Status.FAILED)

    created_at = models.DateTimeField(auto_now_add=True)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    began_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    events_total = models.BigIntegerField(default=0, help_text="Sequenced events when the run began.")
    events_checked = models.BigIntegerField(default=0)
    head_seq = models.BigIntegerField(null=True, blank=True)
    head_hash = models.CharField(max_length=64, blank=True)
    broken_seq = models.BigIntegerField(null=True, blank=True, help_text="The first broken link, if any.")
    reason = models.TextField(blank=True, help_text="Why the chain is broken, or why the run failed.")
    # Each comparison as {"status": ok|mismatch|none|unavailable|not_configured, "count", "last_seq", "last_at",
    # "tail", "mismatches": [{"seq", "reason"}], "detail"}; {} when it was not reached (the chain was broken).
    checkpoints = models.JSONField(default=dict)
    witness = models.JSONField(default=dict)
    unwitnessed = models.BigIntegerField(null=True, blank=True,
                                         help_text="Events of the chain after the last signed checkpoint.")
    unsequenced = models.BigIntegerField(default=0, help_text="Committed events not yet in the chain.")

    class Meta:
        ordering = ["-pk"]
        indexes = [models.Index(fields=["status"], name="verification_status_idx")]

    def __str__(self) -> str:
        return f"verification {self.pk} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def percent(self) -> int:
        if self.finished:
            return 100
        return int(100 * self.events_checked / self.events_total) if self.events_total else 0

    @property
    def comparisons(self) -> list[tuple[str, dict]]:
        return [("Checkpoint file", self.checkpoints), ("Witness", self.witness)]
