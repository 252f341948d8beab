import pgtrigger
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from reviewapp.policy.enforcement import Action

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


class CaseState(models.TextChoices):
    NEW = "new", "New"
    IN_REVIEW = "in_review", "In review"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting second approval"
    DECIDED = "decided", "Decided"
    CLOSED = "closed", "Closed"


# The one definition of an open case and of a live claim. The partial indexes and the one-open-case constraint
# below, claim-next's raw SQL (predicates.q_sql), the selectors and the pages (Case.is_open, claim_live_at) are
# all built from these; tests/cases/test_workflow.py checks that the readings agree.
OPEN_CASE_STATES = (CaseState.NEW, CaseState.IN_REVIEW, CaseState.AWAITING_APPROVAL)
CLAIMABLE_STATES = (CaseState.NEW, CaseState.IN_REVIEW)  # what claim-next walks (with the lapse rule below)


def open_case(prefix: str = "") -> Q:
    """Open cases (``prefix`` for a relation, e.g. ``"cases__"``): one per account; the queues show them."""
    return Q(**{f"{prefix}state__in": [state.value for state in OPEN_CASE_STATES]})


def claimable_states() -> Q:
    return Q(state__in=[state.value for state in CLAIMABLE_STATES])


def live_claim(now) -> Q:
    """A claim that holds at ``now``: the case is in review and its lease has not run out."""
    return Q(state=CaseState.IN_REVIEW.value, lease_expires_at__gt=now)


def claim_lapsed(now) -> Q:
    """In review, but the claim no longer holds at ``now``: the lapse job returns it, claim-next may take it."""
    return Q(state=CaseState.IN_REVIEW.value) & ~live_claim(now)


def claimable(now) -> Q:
    """What claim-next may take at ``now``: a new case, or one whose claim lapsed."""
    return claimable_states() & ~live_claim(now)


class Case(models.Model):
    """The unit of review: one account's flags while the case is open (one open case per account)."""

    State = CaseState
    OPEN_STATES = OPEN_CASE_STATES

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="cases")
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, null=True, blank=True, related_name="cases")
    state = models.CharField(max_length=24, choices=State.choices, default=State.NEW)
    queue = models.CharField(max_length=24, choices=Queue.choices)
    priority = models.PositiveSmallIntegerField(default=0)
    sla_due_at = models.DateTimeField()
    # Derived from the case's flags, kept on the row so queues sort and filter without joins; each grouping
    # batch adds its flags to them (services.cases_add_flags), never re-reading the case's earlier flags.
    signals = ArrayField(models.CharField(max_length=32), default=list)
    flag_count = models.PositiveIntegerField(default=0)
    total_requests = models.BigIntegerField(default=0)
    max_score = models.FloatField(default=0)
    last_observed_at = models.DateTimeField(null=True)
    opened_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # A claim: who reviews the case now, until when (renewed while they work; see services.case_claim).
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="claimed_cases")
    claimed_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account"], condition=open_case(), name="cases_one_open_case_per_account"),
        ]
        indexes = [
            models.Index(fields=["queue", "-priority", "opened_at"], name="cases_open_queue_idx",
                         condition=open_case()),
            # What claim-next walks: unclaimed or lapsed cases of a queue, best first.
            models.Index(fields=["queue", "-priority", "opened_at"], name="cases_claimable_idx",
                         condition=claimable_states()),
            models.Index(fields=["state"], name="cases_state_idx"),
            models.Index(fields=["priority"], name="cases_priority_idx"),
        ]
        permissions = [
            ("view_case_evidence", "Can open the raw evidence of a case"),
            ("claim_case", "Can claim cases from queues and decide them"),
        ]

    def __str__(self) -> str:
        return f"Case {self.pk} ({self.account})"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_CASE_STATES

    def claim_live_at(self, now) -> bool:
        """Whether the claim holds at ``now`` (``live_claim``, read on this instance)."""
        from .predicates import q_holds

        return q_holds(live_claim(now), self)

    @property
    def claim_is_live(self) -> bool:
        """For pages: the claim holds now."""
        return self.claim_live_at(timezone.now())

    @property
    def claim_has_lapsed(self) -> bool:
        """For pages: in review, but the claim ran out (``claim_lapsed``)."""
        from .predicates import q_holds

        return q_holds(claim_lapsed(timezone.now()), self)


class CaseUserObjectPermission(UserObjectPermissionBase):
    """django-guardian's per-case permissions, with a real foreign key (fast joins, cascades)."""

    content_object = models.ForeignKey(Case, on_delete=models.CASCADE)


class CaseGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Case, on_delete=models.CASCADE)


class Decision(models.Model):
    """A reviewer's decision on one case, under clauses of the policy version in force (invariant 4).

    Written once; what happens to it afterwards (approval, sending back, enforcement, lifting) is its
    state, changed only by services, each change audited.
    """

    class State(models.TextChoices):
        AWAITING_APPROVAL = "awaiting_approval", "Awaiting second approval"
        SENT_BACK = "sent_back", "Sent back"
        ENFORCED = "enforced", "Enforced"
        NO_ACTION = "no_action", "No violation found"
        LIFTED = "lifted", "Expired and lifted"
        REVERSED = "reversed", "Reversed on appeal"

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="decisions")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="decisions")
    policy_version = models.ForeignKey("policy.PolicyVersion", on_delete=models.PROTECT, related_name="+")
    clauses = models.ManyToManyField("policy.Clause", related_name="decisions")
    action = models.CharField(max_length=16, choices=Action.choices)
    duration_days = models.PositiveIntegerField(null=True, blank=True)
    # Text limits (README "Limits on what people type"): varchar(N), so the database refuses longer text too.
    # facts_for_holder is the statement's "decision_facts", which the DSA Transparency Database caps at 5,000.
    rationale = models.CharField(max_length=10_000, help_text="Internal: why, for reviewers, approvers and auditors.")
    facts_for_holder = models.CharField(max_length=5_000, blank=True, verbose_name="facts for the account holder",
                                        help_text="What the account holder is told was relied on.")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="decisions")
    decided_at = models.DateTimeField(auto_now_add=True)
    state = models.CharField(max_length=24, choices=State.choices)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="approved_decisions")
    approved_at = models.DateTimeField(null=True, blank=True)
    sent_back_reason = models.CharField(max_length=5_000, blank=True, verbose_name="reason for sending back")
    campaign_run = models.UUIDField(null=True, blank=True, help_text="Set on decisions taken together for a campaign.")
    effective_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    lifted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-decided_at"]
        permissions = [("approve_decision", "Can give the second approval of a severe action")]
        indexes = [
            models.Index(fields=["ends_at"], name="decisions_expiring_idx",
                         condition=Q(state="enforced", ends_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"Decision {self.pk}: {self.get_action_display()} on {self.account}"

    @property
    def needs_second_approval(self) -> bool:
        return self.state == self.State.AWAITING_APPROVAL


class StatementOfReasons(models.Model):
    """What the account holder is told (DSA Art. 17), frozen when the decision is enforced.

    ``content`` is the statement as issued; it never changes, so it can be shown and exported exactly.
    """

    decision = models.OneToOneField(Decision, on_delete=models.PROTECT, related_name="statement")
    issued_at = models.DateTimeField()
    appeal_deadline = models.DateTimeField()
    content = models.JSONField()

    class Meta:
        triggers = [pgtrigger.Protect(name="statement_immutable", operation=pgtrigger.Update | pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"Statement of reasons {self.pk}"


class CaseNote(models.Model):
    """An internal note on a case (never shown to the holder)."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text = models.CharField(max_length=10_000, verbose_name="note")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"Note {self.pk} on case {self.case_id}"


class HolderLink(models.Model):
    """A signed, expiring, single-use sign-in link for an account holder (sent with notices, or on request).

    Only the SHA-256 of the link's secret is stored; the link itself is signed, so a tampered link is
    refused before any lookup.
    """

    class Purpose(models.TextChoices):
        NOTICE = "notice", "Sent with a decision notice"
        REQUESTED = "requested", "Requested by the holder"
        OUTCOME = "outcome", "Sent with an appeal outcome or message"

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="holder_links")
    token_hash = models.CharField(max_length=64, unique=True)
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Sign-in link {self.pk} for {self.account}"
