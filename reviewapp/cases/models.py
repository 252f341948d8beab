from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

from .vocabulary import Queue


class Account(models.Model):
    """A platform account that detectors flagged. Created when its first flag is grouped."""

    class EnforcementStatus(models.TextChoices):
        NONE = "none", "No action"
        WARNED = "warned", "Warned"
        RATE_LIMITED = "rate_limited", "Rate limited"
        SUSPENDED = "suspended", "Suspended"
        TERMINATED = "terminated", "Terminated"

    external_id = models.CharField(max_length=128, unique=True, help_text="The platform's account id.")
    organization_id = models.CharField(max_length=128, blank=True)
    contact_email = models.EmailField(blank=True)
    region = models.CharField(max_length=32, blank=True)
    researcher_programme = models.BooleanField(
        default=False, help_text="Enrolled in the researcher access programme (good-faith safety research).")
    enforcement_status = models.CharField(
        max_length=16, choices=EnforcementStatus.choices, default=EnforcementStatus.NONE)
    first_flagged_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.external_id


class Campaign(models.Model):
    """Accounts a detector placed in one cluster: cases whose flags share a ``cluster_id``."""

    key = models.CharField(max_length=200, unique=True, help_text="detector slug and cluster id")
    detector_slug = models.CharField(max_length=64)
    cluster_id = models.CharField(max_length=128)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Case(models.Model):
    """The unit of review: one account's flags while the case is open (one open case per account)."""

    class State(models.TextChoices):
        NEW = "new", "New"
        IN_REVIEW = "in_review", "In review"
        AWAITING_APPROVAL = "awaiting_approval", "Awaiting second approval"
        DECIDED = "decided", "Decided"
        CLOSED = "closed", "Closed"

    OPEN_STATES = (State.NEW, State.IN_REVIEW, State.AWAITING_APPROVAL)

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="cases")
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, null=True, blank=True, related_name="cases")
    state = models.CharField(max_length=24, choices=State.choices, default=State.NEW)
    queue = models.CharField(max_length=24, choices=Queue.choices)
    priority = models.PositiveSmallIntegerField(default=0)
    sla_due_at = models.DateTimeField()
    # Derived from the case's flags, kept on the row so queues sort and filter without joins;
    # recomputed from the flags by services.flags_group every time flags arrive.
    signals = ArrayField(models.CharField(max_length=32), default=list)
    flag_count = models.PositiveIntegerField(default=0)
    total_requests = models.BigIntegerField(default=0)
    max_score = models.FloatField(default=0)
    last_observed_at = models.DateTimeField(null=True)
    opened_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account"], condition=Q(state__in=["new", "in_review", "awaiting_approval"]),
                name="cases_one_open_case_per_account",
            ),
        ]
        indexes = [
            models.Index(fields=["queue", "-priority", "opened_at"], name="cases_open_queue_idx",
                         condition=Q(state__in=["new", "in_review", "awaiting_approval"])),
            models.Index(fields=["state"], name="cases_state_idx"),
            models.Index(fields=["priority"], name="cases_priority_idx"),
        ]
        permissions = [("view_case_evidence", "Can open the raw evidence of cases assigned to them")]

    def __str__(self) -> str:
        return f"Case {self.pk} ({self.account})"

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES
