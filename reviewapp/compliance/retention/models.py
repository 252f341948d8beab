from django.db import models


class PurgeRun(models.Model):
    """One run of the retention purge (DESIGN.md invariant 8), or of its dry run: when, and what it removed (or
    would have removed), as counted by ``services.retention_purge``.

    ``counts``: ``{"evidence": {<group>: {"cases", "flags", "excerpts", "oldest_due"}}, "emails": {"messages",
    "oldest_delivered"}, "totals": {"cases", "flags", "excerpts", "emails"}}``; a group is a clause reference (the
    evidence of cases decided under it), ``selectors.NO_DECISION`` or ``selectors.SET_ASIDE``. Written once, when
    the run has finished, with its ``compliance.retention_purged`` (or ``_dry_run``) audit event.
    """

    class Source(models.TextChoices):
        BEAT = "beat", "Daily schedule"
        COMMAND = "command", "manage.py purge_retention"

    key = models.UUIDField(unique=True, help_text="Names the run in the evidence.purged and outbox events it wrote.")
    source = models.CharField(max_length=16, choices=Source.choices)
    dry_run = models.BooleanField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    as_of = models.DateTimeField(help_text="The instant retention periods were measured against.")
    batch_size = models.PositiveIntegerField()
    batches = models.PositiveIntegerField(default=0)
    counts = models.JSONField()

    class Meta:
        ordering = ["-finished_at", "-pk"]

    def __str__(self) -> str:
        return f"{'dry run' if self.dry_run else 'purge'} {self.pk}"
