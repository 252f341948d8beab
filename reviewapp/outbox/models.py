from django.db import models
from django.db.models import Q
from django.utils import timezone


class OutboxMessage(models.Model):
    """One external effect waiting to happen, or done: a webhook to post, an email to send.

    Written by ``services.outbox_enqueue`` in the transaction of the change that causes it; delivered
    by the ``deliver`` task, at least once, under its ``idempotency_key`` so the peer applies it once.
    What is sent is derived deterministically from ``payload`` (canonical JSON for webhooks), so a
    retry sends the same content. The target is an identifier pair, never a foreign key, like the
    audit trail: a message outlives the object it is about.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        # Gave up after OUTBOX_MAX_ATTEMPTS; services.outbox_retry puts it back to pending.
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=32)
    payload = models.JSONField()
    idempotency_key = models.CharField(max_length=200, unique=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=128, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # When the next try is due (pending); empty once delivered or given up.
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # The reconciler's query (pending and due) and the staff page's "not delivered" view stay
            # small however many delivered rows accumulate.
            models.Index(fields=["state", "next_attempt_at"], condition=~Q(state="delivered"),
                         name="outbox_undelivered_idx"),
            models.Index(fields=["target_type", "target_id"], name="outbox_target_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.state})"

    @property
    def target_label(self) -> str:
        return f"{self.target_type} {self.target_id}" if self.target_type else ""
