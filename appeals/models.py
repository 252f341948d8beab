from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q


class AppealState(models.TextChoices):
    FILED = "filed", "Filed, waiting for a reviewer"
    IN_REVIEW = "in_review", "Being reviewed"
    INFO_REQUESTED = "info_requested", "Waiting for your reply"
    DECIDED = "decided", "Decided"


# The one definition of an open appeal (one per decision: the constraint below; the queues show them).
OPEN_APPEAL_STATES = (AppealState.FILED, AppealState.IN_REVIEW, AppealState.INFO_REQUESTED)


def open_appeal() -> Q:
    return Q(state__in=[state.value for state in OPEN_APPEAL_STATES])


class Appeal(models.Model):
    """An account holder contests a decision (DSA Art. 20): free, online, decided by a person who took
    no part in the original decision, with a reasoned outcome."""

    State = AppealState

    class Outcome(models.TextChoices):
        UPHELD = "upheld", "Upheld: the decision stands"
        OVERTURNED = "overturned", "Overturned: the decision is reversed"
        MODIFIED = "modified", "Modified: a lesser action replaces it"

    OPEN_STATES = OPEN_APPEAL_STATES
    # When a filed appeal must be decided: its review is due this long after filing (DSA Art. 20(4): "timely").
    # The holder's filing deadline (``deadline``) has passed or no longer matters once the appeal is filed.
    REVIEW_SLA = timedelta(days=14)

    decision = models.ForeignKey("cases.Decision", on_delete=models.PROTECT, related_name="appeals")
    account = models.ForeignKey("cases.Account", on_delete=models.PROTECT, related_name="appeals")
    state = models.CharField(max_length=16, choices=State.choices, default=State.FILED)
    # Text limits (README "Limits on what people type"): varchar(N), so the database refuses longer text too.
    grounds = models.CharField(max_length=20_000)
    researcher_claim = models.BooleanField(default=False, help_text="Claims researcher-programme membership.")
    affiliation = models.CharField(max_length=200, blank=True)
    filed_at = models.DateTimeField(auto_now_add=True)
    deadline = models.DateTimeField(help_text="When the appeal window of the decision closes(d).")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="appeals_reviewed")
    claimed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    outcome_reason = models.CharField(max_length=10_000, blank=True, verbose_name="reasons for the holder",
                                      help_text="The reasoned outcome, written for the holder.")
    replacement = models.OneToOneField("cases.Decision", on_delete=models.PROTECT, null=True, blank=True,
                                       related_name="replaces_on_appeal")
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-filed_at"]
        constraints = [
            models.UniqueConstraint(fields=["decision"], condition=open_appeal(), name="appeals_one_open_per_decision"),
        ]
        permissions = [("decide_appeal", "Can review and decide appeals")]

    def __str__(self) -> str:
        return f"Appeal {self.pk} against decision {self.decision_id}"

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES

    @property
    def review_due_at(self):
        """When the review is due: ``REVIEW_SLA`` after filing (the queue sorts by it)."""
        return self.filed_at + self.REVIEW_SLA


class AppealAttachment(models.Model):
    """A file the holder attached, stored outside the web root; served only to the holder and the
    appeal's reviewer (and compliance), through a view that checks."""

    appeal = models.ForeignKey(Appeal, on_delete=models.PROTECT, related_name="attachments")
    name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    stored_as = models.CharField(max_length=200, unique=True)
    uploaded_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class AppealMessage(models.Model):
    """A message between the holder and the appeal's reviewer (both are emailed)."""

    class Author(models.TextChoices):
        HOLDER = "holder", "You"
        STAFF = "staff", "Reviewer"

    appeal = models.ForeignKey(Appeal, on_delete=models.PROTECT, related_name="messages")
    author_type = models.CharField(max_length=8, choices=Author.choices)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                               related_name="+")
    text = models.CharField(max_length=20_000, verbose_name="message")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"Message {self.pk} on appeal {self.appeal_id}"
