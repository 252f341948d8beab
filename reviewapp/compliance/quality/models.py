"""Quality of decisions: samples drawn for a blind second look, the seniors' verdicts, and calibration alerts.

None of these rows changes a case, a decision or an appeal: a sample is the console's own record of what
compliance asked to have looked at again, a verdict is the second reviewer's opinion beside the decision,
and an alert records that a detector version's overturn rate crossed the threshold (so it is raised once).
"""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

from reviewapp.policy.enforcement import Action


class SecondLookSample(models.Model):
    """One draw of decided cases for a second look: its parameters and seed, so the draw can be repeated."""

    class Strata(models.TextChoices):
        NONE = "none", "No strata: one draw over every decision"
        CLAUSE = "clause", "By clause (the set of clauses the decision cited)"
        REVIEWER = "reviewer", "By reviewer (who took the decision)"
        CLAUSE_REVIEWER = "clause_reviewer", "By clause and reviewer"

    drawn_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    drawn_at = models.DateTimeField(auto_now_add=True)
    seed = models.BigIntegerField(help_text="The draw's seed: the same seed over the same decisions draws the same.")
    strata = models.CharField(max_length=16, choices=Strata.choices)
    per_stratum = models.PositiveIntegerField(help_text="Decisions drawn from each stratum (or in all, without).")
    clause_refs = ArrayField(models.CharField(max_length=32), default=list, blank=True,
                             help_text="Only decisions citing one of these clauses (empty: any).")
    reviewer_ids = ArrayField(models.IntegerField(), default=list, blank=True,
                              help_text="Only decisions taken by these reviewers (empty: anyone).")
    decided_from = models.DateField(null=True, blank=True)
    decided_to = models.DateField(null=True, blank=True)
    population = models.PositiveIntegerField(help_text="Decisions the sample was drawn from.")

    class Meta:
        ordering = ["-drawn_at", "-id"]
        permissions = [("draw_secondlooksample", "Can draw a sample of decided cases for a second look")]

    def __str__(self) -> str:
        return f"Sample {self.pk}"


class SecondLook(models.Model):
    """One sampled decision and, once given, a senior reviewer's blind verdict on its case.

    A decision is sampled at most once. ``same_action`` and ``same_clauses`` compare the verdict with the
    decision when the verdict is recorded; a decision is written once, so they never go stale.
    """

    sample = models.ForeignKey(SecondLookSample, on_delete=models.PROTECT, related_name="second_looks")
    decision = models.OneToOneField("cases.Decision", on_delete=models.PROTECT, related_name="+")
    stratum = models.CharField(max_length=300, help_text="For compliance only: it names clauses and reviewer.")
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="+")
    reviewed_at = models.DateTimeField(null=True, blank=True)
    action = models.CharField(max_length=16, choices=Action.choices, blank=True)
    clauses = models.ManyToManyField("policy.Clause", related_name="+", blank=True)
    rationale = models.CharField(max_length=10_000, blank=True)
    same_action = models.BooleanField(null=True)
    same_clauses = models.BooleanField(null=True)

    class Meta:
        ordering = ["sample_id", "id"]
        permissions = [("review_secondlook", "Can give a blind second review of a sampled decision")]
        indexes = [models.Index(fields=["id"], condition=Q(reviewed_at__isnull=True), name="quality_pending_idx")]

    def __str__(self) -> str:
        return f"Second look {self.pk}"

    @property
    def is_reviewed(self) -> bool:
        return self.reviewed_at is not None


class CalibrationAlert(models.Model):
    """A detector version's overturn rate crossed the threshold: raised once per crossing, cleared when the
    rate falls back below it (each change audited). At most one open alert per detector version."""

    detector = models.ForeignKey("flags.Detector", on_delete=models.PROTECT, related_name="+")
    detector_version = models.CharField(max_length=64)
    raised_at = models.DateTimeField(auto_now_add=True)
    cleared_at = models.DateTimeField(null=True, blank=True)
    overturn_rate = models.FloatField()
    appeals_decided = models.PositiveIntegerField()
    overturned = models.PositiveIntegerField()
    threshold = models.FloatField()

    class Meta:
        ordering = ["-raised_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["detector", "detector_version"],
                                               condition=Q(cleared_at__isnull=True), name="quality_one_open_alert")]

    def __str__(self) -> str:
        return f"Alert on {self.detector_id} {self.detector_version}"
