import pgtrigger
from django.db import models
from django.db.models import Q

from .actions import AuditAction

# The one UPDATE the table accepts: the sequencer giving a committed, not yet sequenced event its
# position and hashes (seq, prev_hash and hash from NULL to a value) while every other column stays as
# it was written. Any other UPDATE, every DELETE (and TRUNCATE, below) is refused. See sequencer.py.
_APPEND_ONLY = """
IF TG_OP = 'UPDATE'
   AND OLD.seq IS NULL AND OLD.prev_hash IS NULL AND OLD.hash IS NULL
   AND NEW.seq IS NOT NULL AND NEW.prev_hash IS NOT NULL AND NEW.hash IS NOT NULL
   AND to_jsonb(NEW) - 'seq' - 'prev_hash' - 'hash' = to_jsonb(OLD) - 'seq' - 'prev_hash' - 'hash'
THEN
    RETURN NEW;
END IF;
RAISE EXCEPTION 'pgtrigger: Cannot update or delete rows from % table', TG_TABLE_NAME;
"""


class AuditEvent(models.Model):
    """One event of the audit trail and, once sequenced, one link of the hash chain.

    ``record`` inserts the event in the writer's transaction with ``seq``, ``prev_hash`` and ``hash``
    empty; the sequencer (``sequencer.sequence_pending``) fills them in shortly after the commit, once,
    in order. Apart from that one step a row never changes (the triggers below).

    Actor and target are stored as identifiers plus a display snapshot, never as foreign keys, so an
    event outlives the user or object it names.
    """

    class ActorType(models.TextChoices):
        USER = "user", "Staff member or user"
        HOLDER = "holder", "Account holder"
        DETECTOR = "detector", "Detector (service token)"
        SYSTEM = "system", "reviewapp itself"
        ANONYMOUS = "anonymous", "Not signed in"

    # The order events were written in; the chain's order is ``seq``.
    id = models.BigAutoField(primary_key=True)
    seq = models.BigIntegerField(
        null=True, unique=True, help_text="Gapless position in the chain, from 1; empty until sequenced."
    )
    created_at = models.DateTimeField()
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor_id = models.CharField(max_length=128, blank=True)
    actor_display = models.CharField(max_length=255, blank=True)
    # Validated against AuditAction by record(); no `choices` here, so a new code needs no migration.
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=128, blank=True)
    data = models.JSONField(default=dict)
    # NULL, not "", until sequenced. Not indexed: no query looks an event up by its hash (docs/audit-indexes.md).
    prev_hash = models.CharField(max_length=64, null=True)  # noqa: DJ001
    hash = models.CharField(max_length=64, null=True)  # noqa: DJ001

    class Meta:
        ordering = ["-id"]
        # Each index is written twice per event, by the insert and by the sequencer's (never HOT) update: only
        # those a query needs (docs/audit-indexes.md names the query of each).
        indexes = [
            # What the sequencer reads: only the few rows still waiting, in the order it takes them.
            models.Index(fields=["created_at", "id"], condition=Q(seq__isnull=True), name="audit_unsequenced_idx"),
            models.Index(fields=["target_type", "target_id"], name="audit_target_idx"),
            models.Index(fields=["actor_type", "actor_id"], name="audit_actor_idx"),
            models.Index(fields=["created_at"], name="audit_created_idx"),
            # Equality only (no LIKE on action anywhere), so no varchar_pattern_ops twin as db_index=True made.
            models.Index(fields=["action"], name="audit_action_idx"),
        ]
        permissions = [("verify_chain", "Can verify the audit chain")]
        triggers = [
            pgtrigger.Trigger(
                name="audit_append_only",
                operation=pgtrigger.Update | pgtrigger.Delete,
                level=pgtrigger.Row,
                when=pgtrigger.Before,
                func=_APPEND_ONLY,
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
        position = f"#{self.seq}" if self.seq is not None else "(pending sequencing)"
        return f"{position} {self.action} by {self.actor_display or self.actor_type}"

    @property
    def action_label(self) -> str:
        return AuditAction(self.action).label if self.action in AuditAction.values else self.action
