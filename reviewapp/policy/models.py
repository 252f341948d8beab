import pgtrigger
from django.contrib.postgres.fields import ArrayField
from django.db import models

from .enforcement import Action


class Policy(models.Model):
    """A policy document (e.g. the usage policy), identified by the slug in its file's front matter."""

    slug = models.SlugField(max_length=64, unique=True)
    title = models.CharField(max_length=200)

    def __str__(self) -> str:
        return self.title


class PolicyVersion(models.Model):
    """One published text of a policy. Never changes once written (triggers refuse UPDATE and DELETE)."""

    policy = models.ForeignKey(Policy, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    source_path = models.CharField(max_length=255)
    source_sha256 = models.CharField(max_length=64, help_text="SHA-256 of the file the version was loaded from.")
    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True)
    effective_from = models.DateField()
    published_at = models.DateTimeField(auto_now_add=True)
    text = models.TextField(help_text="The whole Markdown document as published.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["policy", "number"], name="policy_version_number_unique")]
        ordering = ["policy", "-number"]
        triggers = [pgtrigger.Protect(name="policy_version_immutable", operation=pgtrigger.Update | pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"{self.policy.slug} v{self.number}"


class Clause(models.Model):
    """One clause of a published version: what decisions cite. Never changes once written."""

    class Severity(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"
        CRITICAL = "critical", "Critical"

    version = models.ForeignKey(PolicyVersion, on_delete=models.PROTECT, related_name="clauses")
    ref = models.CharField(max_length=32, help_text="Stable reference, e.g. UP-4.2; the same across versions.")
    position = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    text = models.TextField()
    severity = models.CharField(max_length=16, choices=Severity.choices)
    permitted_actions = ArrayField(models.CharField(max_length=16, choices=Action.choices))
    evidence_required = models.TextField(help_text="What a decision under this clause must rest on.")
    requires_second_approval = models.BooleanField(default=False)
    evidence_retention_days = models.PositiveIntegerField()
    appeal_window_days = models.PositiveIntegerField(default=180)
    dsa_category = models.CharField(max_length=80, help_text="DSA Transparency Database statement category.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["version", "ref"], name="policy_clause_ref_unique")]
        ordering = ["version", "position"]
        triggers = [pgtrigger.Protect(name="policy_clause_immutable", operation=pgtrigger.Update | pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"{self.ref} {self.title}"
