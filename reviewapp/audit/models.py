import pgtrigger
from django.db import models

from .actions import AuditAction


class AuditEvent(models.Model):
    """One link of the hash chain. Rows are written by ``services.record`` and never change.

    Actor and target are stored as identifiers plus a display snapshot, never as foreign keys, so an
    event outlives the user or object it names.
    """

    class ActorType(models.TextChoices):
        USER = "user", "Staff member or user"
        HOLDER = "holder", "Account holder"
        DETECTOR = "detector", "Detector (service token)"
        SYSTEM = "system", "reviewapp itself"
        ANONYMOUS = "anonymous", "Not signed in"

    seq = models.BigIntegerField(primary_key=True, help_text="Gapless position in the chain, from 1.")
    created_at = models.DateTimeField()
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor_id = models.CharField(max_length=128, blank=True)
    actor_display = models.CharField(max_length=255, blank=True)
    # Validated against AuditAction by record(); no `choices` here, so a new code needs no migration.
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=128, blank=True)
    data = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-seq"]
        indexes = [
            models.Index(fields=["target_type", "target_id"], name="audit_target_idx"),
            models.Index(fields=["actor_type", "actor_id"], name="audit_actor_idx"),
            models.Index(fields=["created_at"], name="audit_created_idx"),
        ]
        permissions = [("verify_chain", "Can verify the audit chain")]
        triggers = [
            pgtrigger.Protect(
                name="audit_append_only",
                operation=pgtrigger.Update | pgtrigger.Delete,
            ),
            # pgtrigger's Protect has no statement-level TRUNCATE form; this is the same thing spelled out.
            pgtrigger.Trigger(
                name="audit_no_truncate",
                operation=pgtrigger.Truncate,
                level=pgtrigger.Statement,
                when=pgtrigger.Before,
                func="RAISE EXCEPTION 'pgtrigger: Cannot truncate % table', TG_TABLE_NAME;",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} by {self.actor_display or self.actor_type}"

    @property
    def action_label(self) -> str:
        return AuditAction(self.action).label if self.action in AuditAction.values else self.action
