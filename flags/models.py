import pgtrigger
from django.db import models
from django.db.models import Q


class Detector(models.Model):
    """A detection system of the provider that posts flags with its own tokens. Deactivated, never deleted."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    owner_team = models.CharField(max_length=200, blank=True)
    description = models.CharField(max_length=2_000, blank=True)  # README "Limits on what people type"
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]
        triggers = [pgtrigger.Protect(name="detector_never_deleted", operation=pgtrigger.Delete)]

    def __str__(self) -> str:
        return self.slug


class DetectorToken(models.Model):
    """A bearer token for one detector. Only its SHA-256 is stored; the token is shown once."""

    detector = models.ForeignKey(Detector, on_delete=models.PROTECT, related_name="tokens")
    prefix = models.CharField(max_length=16, help_text="The first characters, to tell tokens apart.")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=255, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.detector.slug} {self.prefix}…"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class FlagBatch(models.Model):
    """The receipt of one ingestion call (one API request or one chunk of a backfill file)."""

    class Source(models.TextChoices):
        API = "api", "API"
        FILE = "file", "Backfill file"

    detector = models.ForeignKey(Detector, on_delete=models.PROTECT, null=True, related_name="batches")
    source = models.CharField(max_length=8, choices=Source.choices)
    received_at = models.DateTimeField(auto_now_add=True)
    created = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    conflicts = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)

    class Meta:
        triggers = [pgtrigger.Protect(name="flag_batch_never_deleted", operation=pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"batch {self.pk} ({self.source})"


class Flag(models.Model):
    """One detector finding about one account (schema v1). Never changed after it is stored.

    ``case`` is empty until the grouping task attaches the flag; a flag with no case is "pending", and
    the periodic reconciler keeps grouping until none is left.

    The table is partitioned by month of ``received_at`` (PostgreSQL declarative RANGE partitioning, with a
    DEFAULT partition so an insert never fails; flags/partitions.py creates the months ahead). Django keeps
    ``id`` as the primary key (ids come from one sequence and are unique); in the database the primary key is
    (id, received_at), because PostgreSQL requires the partition key in every unique index of a partitioned
    table. For the same reason (detector, external_id) is unique in ``FlagKey``, not here
    (docs/flags-indexes.md).
    """

    # No index of its own: FlagKey's primary key leads with it.
    # No database foreign-key constraints on detector and batch: at hundreds of thousands of rows a day
    # the per-row checks halved the insert rate (README "Performance"). References cannot dangle: both
    # ids come from the ingesting transaction itself, and the database refuses to delete a detector or a
    # batch (triggers on those tables).
    detector = models.ForeignKey(Detector, on_delete=models.PROTECT, related_name="flags", db_index=False,
                                 db_constraint=False)
    external_id = models.CharField(max_length=200)
    schema_version = models.PositiveSmallIntegerField(default=1)
    detector_version = models.CharField(max_length=64)
    account_external_id = models.CharField(max_length=128)
    organization_id = models.CharField(max_length=128, blank=True)
    signal = models.CharField(max_length=32)
    score = models.FloatField()
    observed_from = models.DateTimeField()
    observed_to = models.DateTimeField()
    request_count = models.BigIntegerField(null=True)
    cluster_id = models.CharField(max_length=128, blank=True)
    evidence = models.JSONField(null=True)
    content_hash = models.CharField(
        max_length=64, help_text="SHA-256 of the canonical flag, to tell replays from conflicts.")
    # Unindexed: nothing reads flags by batch on a hot path, and every index slows the bulk insert.
    batch = models.ForeignKey(FlagBatch, on_delete=models.PROTECT, related_name="flags", db_index=False,
                              db_constraint=False)
    received_at = models.DateTimeField()
    case = models.ForeignKey("cases.Case", on_delete=models.PROTECT, null=True, related_name="flags")

    class Meta:
        indexes = [
            models.Index(fields=["id"], condition=Q(case__isnull=True), name="flags_pending_idx"),
            models.Index(fields=["account_external_id"], name="flags_account_idx"),
        ]
        triggers = [
            # What a detector said is never rewritten: only grouping (case) and the retention purge
            # (evidence) may touch a stored flag.
            pgtrigger.ReadOnly(name="flags_read_only", exclude=["case", "evidence"]),
            # The evidence changes only once, to the retention marker and nothing else (flags/retention.py).
            pgtrigger.Protect(name="flags_evidence_only_purged", operation=pgtrigger.Update,
                              condition=pgtrigger.Condition(
                "OLD.evidence IS DISTINCT FROM NEW.evidence AND (OLD.evidence ? 'removed_under_retention' "
                "OR NEW.evidence IS NULL OR NOT (NEW.evidence ? 'removed_under_retention') "
                "OR NEW.evidence - 'removed_under_retention' <> '{}'::jsonb)")),
            # The keys are the flags' keys: a table of flags emptied (by its owner: tests, the benchmark) takes
            # them along, or every replay of what was there would count as a duplicate of nothing. DELETE, not
            # TRUNCATE: a flush truncates both tables in one statement, and the key table is in use by it then.
            pgtrigger.Trigger(name="flags_truncate_keys", operation=pgtrigger.Truncate, when=pgtrigger.After,
                              level=pgtrigger.Statement, func="DELETE FROM flags_flagkey; RETURN NULL;"),
        ]

    def __str__(self) -> str:
        return f"{self.detector_id}:{self.external_id}"


class FlagKey(models.Model):
    """(detector, external_id) of every stored flag, unique: what ingestion deduplicates on (invariant 3).

    Not a unique index on ``flags_flag``: that table is partitioned by month of ``received_at``, and a unique
    index of a partitioned table must contain the partition key, so it could only say "unique within a
    month". This small table is not partitioned; ingestion writes a flag's key in the transaction that stores
    the flag, key first (flags/services.py): its primary key is what ``ON CONFLICT`` and the concurrent
    writers' waits work on, exactly as the unique constraint on the flags did. ``flag_id`` and
    ``received_at`` find the flag (its partition) again: the primary key of ``flags_flag`` is
    (id, received_at). No database foreign key: PostgreSQL would check every row of a bulk insert, and flags
    are never deleted (the application role has no DELETE on them; a TRUNCATE takes the keys along).
    """

    pk = models.CompositePrimaryKey("detector_id", "external_id")
    detector_id = models.BigIntegerField()
    external_id = models.CharField(max_length=200)
    flag_id = models.BigIntegerField()
    received_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.detector_id}:{self.external_id} → flag {self.flag_id}"


class FlagSetAside(models.Model):
    """A stored flag that grouping could not attach to a case, with the database's reason.

    Grouping isolates a failing batch down to the single flag that makes it fail and sets that flag
    aside (audited: ``flags.set_aside``), so one row never stops grouping for every other flag. Set-aside
    flags are not pending: staff see them on the Detectors page.
    """

    # No database foreign key: flags_flag is partitioned, and a foreign key can only reference a unique
    # constraint, whose columns would have to include received_at (it is (id, received_at)). Flags are never
    # deleted, and the id comes from the flag grouping holds locked.
    flag = models.OneToOneField(Flag, on_delete=models.PROTECT, related_name="set_aside", db_constraint=False)
    detector = models.ForeignKey(Detector, on_delete=models.PROTECT, related_name="set_aside_flags")
    reason = models.TextField()
    set_aside_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-set_aside_at", "-id"]

    def __str__(self) -> str:
        return f"flag {self.flag_id} set aside"
