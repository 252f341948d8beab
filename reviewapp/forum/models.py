"""Forum sharing: what we propose to share, what a sharing officer approved, what was pushed, and a ledger of
every STIX object that left (by id and ``modified``), so that a withdrawal can find every object about an
account (DESIGN.md invariant 6). /work/notes/forum-design.md describes the flow.

Foreign keys to lower apps (cases, flags) use ``related_name="+"``: a lower app must not grow a reverse
accessor into this one (tests/test_layers.py).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import Q

from .tlp import DEFAULT_TLP, Tlp


class ShareSource(models.TextChoices):
    CASE = "case", "A decided case"
    ACCOUNT = "account", "An account"
    CAMPAIGN = "campaign", "A campaign"


class ShareState(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval", "Waiting for a sharing officer"
    APPROVED = "approved", "Approved"  # its push is in ForumPush (pending, sent, partially accepted, failed, refused)
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"  # everything it shared was revoked (officer, or an overturned decision)


# Moves a service may make (services.share_transition applies them, audited). Narrowing keeps a proposal
# waiting (a new version); an approved share can only be withdrawn.
SHARE_TRANSITIONS: dict[ShareState, frozenset[ShareState]] = {
    ShareState.AWAITING_APPROVAL: frozenset({ShareState.AWAITING_APPROVAL, ShareState.APPROVED, ShareState.REJECTED,
                                             ShareState.WITHDRAWN}),
    ShareState.APPROVED: frozenset({ShareState.WITHDRAWN}),
    ShareState.REJECTED: frozenset(),
    ShareState.WITHDRAWN: frozenset(),
}


class ShareProposal(models.Model):
    """A reviewer's proposal to share what was reviewed about a case, an account or a campaign with one trust
    group. Its content is in versions (narrowing or an override makes a new one); only an approved version
    leaves, byte for byte as previewed."""

    State = ShareState
    Source = ShareSource

    # The basis of every STIX id in its bundles: random, so ids reveal nothing local and stay stable across
    # versions of this proposal (a withdrawal is a new version of the same ids).
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    source = models.CharField(max_length=16, choices=ShareSource.choices)
    case = models.ForeignKey("cases.Case", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    account = models.ForeignKey("cases.Account", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    campaign = models.ForeignKey("cases.Campaign", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    proposed_at = models.DateTimeField()
    state = models.CharField(max_length=24, choices=ShareState.choices, default=ShareState.AWAITING_APPROVAL)
    current_version = models.PositiveIntegerField(default=1)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    rejection_reason = models.CharField(max_length=5_000, blank=True)
    # Withdrawal (F2): by an officer with a reason, or by the system when a decision is overturned.
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawn_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                     related_name="+")
    withdrawal_reason = models.CharField(max_length=5_000, blank=True)

    class Meta:
        ordering = ["-proposed_at", "-id"]
        permissions = [
            ("propose_share", "Can propose a share with the Forum"),
            ("approve_share", "Can approve, reject or narrow a share with the Forum"),
            ("withdraw_share", "Can withdraw what was shared with the Forum"),
        ]
        constraints = [
            models.CheckConstraint(
                name="share_source_matches",
                condition=(Q(source="case", case__isnull=False) | Q(source="account", account__isnull=False)
                           | Q(source="campaign", campaign__isnull=False)),
            ),
        ]
        indexes = [models.Index(fields=["state", "proposed_at"], name="share_state_idx")]

    def __str__(self) -> str:
        return f"Share {self.pk} ({self.get_state_display()})"


class ShareVersion(models.Model):
    """One exact content of a proposal: destination, TLP, items and accounts. Never changed once written;
    its bundle is rebuilt deterministically from it (``bundles.bundle_build``)."""

    proposal = models.ForeignKey(ShareProposal, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # Millisecond precision (STIX timestamps): the objects' created/modified, and the evidence cut-off (flags
    # received later do not change this version's bundle).
    created_at = models.DateTimeField()
    collection_id = models.CharField(max_length=128)
    tlp = models.CharField(max_length=16, choices=Tlp.choices, default=DEFAULT_TLP)
    intrusion_set_name = models.CharField(max_length=200, blank=True,
                                          help_text="The intrusion set the campaign is attributed to, if any.")
    change_note = models.CharField(max_length=2_000, blank=True, help_text="Why this version differs from the last.")
    # SHA-256 of the canonical bundle when the version was made (what the preview shows).
    bundle_sha256 = models.CharField(max_length=64)
    summary = models.JSONField(default=dict)

    class Meta:
        ordering = ["proposal", "number"]
        constraints = [models.UniqueConstraint(fields=["proposal", "number"], name="share_version_unique")]

    def __str__(self) -> str:
        return f"Share {self.proposal_id} v{self.number}"


class ShareItemKind(models.TextChoices):
    CAMPAIGN_SUMMARY = "campaign_summary", "Campaign summary"
    FINGERPRINT = "fingerprint", "Prompt-structure fingerprint"
    VOLUME_STATS = "volume_stats", "Volume statistics"
    ACCOUNT_PSEUDONYMS = "account_pseudonyms", "Account pseudonyms"
    ORGANIZATION_PSEUDONYMS = "organization_pseudonyms", "Organisation pseudonyms"
    EXCERPT = "excerpt", "Prompt excerpt"


class ShareItem(models.Model):
    """One chosen item of a version. ``key``: the simhash of a fingerprint, ``<flag id>:<index>`` of an excerpt,
    empty for the others."""

    Kind = ShareItemKind

    version = models.ForeignKey(ShareVersion, on_delete=models.PROTECT, related_name="items")
    kind = models.CharField(max_length=32, choices=ShareItemKind.choices)
    key = models.CharField(max_length=200, blank=True)
    flag_id = models.BigIntegerField(null=True, blank=True)  # excerpts: the flag whose evidence holds it
    excerpt_index = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["version", "kind", "key"]
        constraints = [models.UniqueConstraint(fields=["version", "kind", "key"], name="share_item_unique")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.key}".strip()


class ShareAccount(models.Model):
    """An account a version is about, frozen when the version is made: included, or excluded and why. A
    researcher-programme account is included only by an officer's override with a reason."""

    class Exclusion(models.TextChoices):
        NONE = "", "Included"
        RESEARCHER = "researcher_programme", "Researcher-programme account"
        NO_VIOLATION = "no_violation_decision", "No recorded violation decision"

    version = models.ForeignKey(ShareVersion, on_delete=models.PROTECT, related_name="accounts")
    account = models.ForeignKey("cases.Account", on_delete=models.PROTECT, related_name="+")
    excluded = models.CharField(max_length=32, choices=Exclusion.choices, blank=True, default=Exclusion.NONE)
    override_reason = models.CharField(max_length=2_000, blank=True)
    override_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="+")

    class Meta:
        ordering = ["version", "account"]
        constraints = [models.UniqueConstraint(fields=["version", "account"], name="share_account_unique")]

    def __str__(self) -> str:
        return f"account {self.account_id} in {self.version}: {self.get_excluded_display()}"

    @property
    def included(self) -> bool:
        return not self.excluded


class ShareApproval(models.Model):
    """A sharing officer's approval of one version (not the proposer's: four eyes). ``bundle_sha256`` is the
    hash of the canonical bundle approved; the push sends only a rebuild with the same hash."""

    proposal = models.OneToOneField(ShareProposal, on_delete=models.PROTECT, related_name="approval")
    version = models.OneToOneField(ShareVersion, on_delete=models.PROTECT, related_name="approval")
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    approved_at = models.DateTimeField()
    bundle_sha256 = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"Approval of share {self.proposal_id} v{self.version.number}"


class ForumPush(models.Model):
    """One bundle on its way to a trust group's TAXII collection, and what the hub said about it.

    ``purpose`` share: the bundle is rebuilt from the approved version at delivery and must match the approval's
    hash. withdrawal / feedback (F2, F3): the bundle is built once by their service and stored in ``bundle``.
    """

    class Purpose(models.TextChoices):
        SHARE = "share", "Approved share"
        WITHDRAWAL = "withdrawal", "Withdrawal"
        FEEDBACK = "feedback", "Feedback to a peer"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"  # queued, hub not reached yet (down = delay), or the hub is still processing
        SENT = "sent", "Sent"  # the hub accepted every object
        PARTIAL = "partial", "Partially accepted"
        FAILED = "failed", "Failed"  # the hub accepted none
        REFUSED = "refused", "Refused: not what was approved"  # the rebuild differed from the approved hash
        # Never posted: what it carried was withdrawn first (the share by an officer, or an account in it whose
        # decision was overturned on appeal), so it must not leave.
        STOPPED = "stopped", "Stopped: withdrawn before it left"

    FINAL_STATES = frozenset({State.SENT, State.PARTIAL, State.FAILED, State.REFUSED, State.STOPPED})

    purpose = models.CharField(max_length=16, choices=Purpose.choices, default=Purpose.SHARE)
    proposal = models.ForeignKey(ShareProposal, on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="pushes")
    version = models.ForeignKey(ShareVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="pushes")
    collection_id = models.CharField(max_length=128)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    # The hash the content must have (share: the approval's), and the bundle for stored purposes.
    bundle_sha256 = models.CharField(max_length=64)
    bundle = models.JSONField(null=True, blank=True)
    # What the hub said: its status resource, counts, and each failure as {"id", "version", "message"}.
    status_id = models.CharField(max_length=128, blank=True)
    success_count = models.PositiveIntegerField(default=0)
    failure_count = models.PositiveIntegerField(default=0)
    pending_count = models.PositiveIntegerField(default=0)
    failures = models.JSONField(default=list, blank=True)
    refused_sha256 = models.CharField(max_length=64, blank=True, help_text="The hash of the rebuild that differed.")
    # Withdrawals: the user-account SCOs no object of ours lists any more once this bundle is accepted, to delete
    # from the collection then (STIX cannot revoke an SCO; TAXII 2.1 "Delete An Object"), and those deleted.
    delete_ids = ArrayField(models.CharField(max_length=128), default=list, blank=True)
    deleted_ids = ArrayField(models.CharField(max_length=128), default=list, blank=True)
    last_error = models.CharField(max_length=2_000, blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state"], name="forum_push_state_idx", condition=Q(state="pending"))]

    def __str__(self) -> str:
        return f"Forum push {self.pk} ({self.get_state_display()})"


class SharedObject(models.Model):
    """The ledger: one row per STIX object version we sent to a collection (id + ``modified``; SCOs, which have
    no ``modified``, store ""), with the local accounts it is about and the account pseudonyms it contains.
    A withdrawal (F2) finds every object about an account here and sends a revoked (or narrowed) new version."""

    stix_id = models.CharField(max_length=128)
    modified = models.CharField(max_length=32, blank=True)
    stix_type = models.CharField(max_length=64)
    collection_id = models.CharField(max_length=128)
    push = models.ForeignKey(ForumPush, on_delete=models.PROTECT, related_name="shared_objects")
    proposal = models.ForeignKey(ShareProposal, on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="shared_objects")
    # Local only (never sent): Account primary keys of the accounts this object is about.
    account_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    pseudonyms = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    key_id = models.CharField(max_length=64, blank=True)
    revoked = models.BooleanField(default=False)
    accepted = models.BooleanField(default=False, help_text="The hub's status listed it as a success.")
    body = models.JSONField(help_text="The object exactly as sent.")
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["stix_id", "modified"]
        constraints = [models.UniqueConstraint(fields=["stix_id", "modified", "collection_id"],
                                               name="shared_object_version_unique")]
        indexes = [
            GinIndex(fields=["account_ids"], name="shared_object_accounts_idx"),
            GinIndex(fields=["pseudonyms"], name="shared_object_pseudonyms_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.stix_id} @ {self.modified or '-'}"


# Inbound intelligence (F3: reviewapp/forum/inbound.py): InboundObject, PullCursor, InboundMatch, the matching
# indexes AccountPseudonym and LocalFingerprint, and InboundReReview. Defined after ShareWithdrawal below.


class ShareWithdrawal(models.Model):
    """What was withdrawn from a share, when and why (F2): one account's objects after its decision was
    overturned on appeal (``account`` set, ``withdrawn_by`` empty: the system did it without waiting for anyone),
    or the whole share by a sharing officer with a reason (``account`` empty). A later withdrawal of the same
    share leaves out every account withdrawn before, so nothing withdrawn comes back. ``push`` is the revoked
    versions on their way (empty when nothing of it had left yet)."""

    proposal = models.ForeignKey(ShareProposal, on_delete=models.PROTECT, related_name="withdrawals")
    account = models.ForeignKey("cases.Account", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    push = models.ForeignKey(ForumPush, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    reason = models.CharField(max_length=2_000)
    decision = models.ForeignKey("cases.Decision", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    appeal_id = models.BigIntegerField(null=True, blank=True)
    withdrawn_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                     related_name="+")
    withdrawn_at = models.DateTimeField()
    revoked_ids = ArrayField(models.CharField(max_length=128), default=list, blank=True)
    narrowed_ids = ArrayField(models.CharField(max_length=128), default=list, blank=True)

    class Meta:
        ordering = ["withdrawn_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["proposal", "account"], name="share_withdrawal_account_once",
                                    condition=Q(account__isnull=False)),
            models.UniqueConstraint(fields=["proposal"], name="share_withdrawal_whole_once",
                                    condition=Q(account__isnull=True)),
        ]

    def __str__(self) -> str:
        what = f"account {self.account_id}" if self.account_id else "whole share"
        return f"Withdrawal of {what} from share {self.proposal_id}"


# ── inbound intelligence (reviewapp/forum/inbound.py) ──────────────────────────────────────────────────────────

class InboundObject(models.Model):
    """One version of a STIX object another lab shared in a collection we pull (id + ``modified``; "" for an
    SCO), with its provenance: who made it (``created_by_ref``, or the identity named on an SCO's extension),
    the collection, its TLP 2.0 marking and when we received it. Our own objects never become inbound."""

    stix_id = models.CharField(max_length=128)
    modified = models.CharField(max_length=32, blank=True)
    stix_type = models.CharField(max_length=64)
    collection_id = models.CharField(max_length=128)
    source_identity = models.CharField(max_length=128, blank=True, help_text="created_by_ref of the object.")
    tlp = models.CharField(max_length=16, choices=Tlp.choices, blank=True, help_text="\"\" = no TLP marking.")
    revoked = models.BooleanField(default=False)
    body = models.JSONField(help_text="The object exactly as received.")
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["received_at", "id"]
        constraints = [models.UniqueConstraint(fields=["stix_id", "modified", "collection_id"],
                                               name="inbound_object_version_unique")]
        indexes = [models.Index(fields=["stix_id"], name="inbound_object_stix_id_idx")]

    def __str__(self) -> str:
        return f"inbound {self.stix_id} @ {self.modified or '-'}"


class PullCursor(models.Model):
    """Where the last pull of a collection stopped: the hub's ``X-TAXII-Date-Added-Last`` (the next pull asks
    for ``added_after`` it), or just before it while a pull is between pages (inbound._cursor_after)."""

    collection_id = models.CharField(max_length=128, unique=True)
    added_after = models.CharField(max_length=40, blank=True)
    pulled_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"cursor {self.collection_id} > {self.added_after or '(start)'}"


class AccountPseudonym(models.Model):
    """A local account's Forum pseudonym under one key id: the index that makes matching an inbound pseudonym
    one indexed lookup, whatever the number of local accounts. Filled by inbound.pseudonyms_backfill."""

    account = models.ForeignKey("cases.Account", on_delete=models.CASCADE, related_name="+")
    key_id = models.CharField(max_length=64)
    pseudonym = models.CharField(max_length=64)

    class Meta:
        constraints = [
            # account_id included: a match is answered from the index alone (index-only scan).
            models.UniqueConstraint(fields=["key_id", "pseudonym"], name="account_pseudonym_unique",
                                    include=["account"]),
            models.UniqueConstraint(fields=["account", "key_id"], name="account_pseudonym_once_per_key"),
        ]

    def __str__(self) -> str:
        return f"pseudonym of account {self.account_id} ({self.key_id})"


class LocalFingerprint(models.Model):
    """A prompt-template simhash seen in a local account's flag evidence, split into four 16-bit bands, each
    indexed: two simhashes within Hamming distance 3 agree on at least one band (pigeonhole), so a lookup is
    four index probes however many fingerprints are stored (inbound.fingerprint_matches)."""

    account = models.ForeignKey("cases.Account", on_delete=models.CASCADE, related_name="+")
    simhash = models.BigIntegerField(help_text="The 64 bits as a signed bigint.")
    band0 = models.IntegerField()
    band1 = models.IntegerField()
    band2 = models.IntegerField()
    band3 = models.IntegerField()
    flag_id = models.BigIntegerField(help_text="The first flag that carried it.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "simhash"], name="local_fingerprint_unique")]
        # The candidates of a band come from the index alone (simhash and account included): no heap visit per
        # candidate, whose number grows as N / 65,536 per band.
        indexes = [models.Index(fields=[f"band{i}"], include=["simhash", "account"],
                                name=f"local_fingerprint_band{i}_idx") for i in range(4)]

    def __str__(self) -> str:
        return f"simhash {self.simhash & 0xFFFFFFFFFFFFFFFF:016x} of account {self.account_id}"


class MatchIndexState(models.Model):
    """How far a matching index was filled from an append-only source (the flag id of LocalFingerprint's)."""

    name = models.CharField(max_length=64, unique=True)
    last_id = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name} up to {self.last_id}"


class InboundMatch(models.Model):
    """An inbound object (its id) that matched a local account, once per (object id, account): the flag from
    detector ``forum`` it became, and its withdrawal when the peer revoked the object."""

    class Kind(models.TextChoices):
        PSEUDONYM = "pseudonym", "Account pseudonym"
        FINGERPRINT = "fingerprint", "Prompt-structure fingerprint"

    stix_id = models.CharField(max_length=128)
    inbound = models.ForeignKey(InboundObject, on_delete=models.PROTECT, related_name="matches")
    collection_id = models.CharField(max_length=128)
    account = models.ForeignKey("cases.Account", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    distance = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Hamming distance (fingerprint).")
    flag_external_id = models.CharField(max_length=200)
    matched_at = models.DateTimeField()
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawal_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["matched_at", "id"]
        constraints = [models.UniqueConstraint(fields=["stix_id", "account"], name="inbound_match_once")]
        indexes = [models.Index(fields=["flag_external_id"], name="inbound_match_flag_idx")]

    def __str__(self) -> str:
        return f"{self.stix_id} matched account {self.account_id}"


class InboundReReview(models.Model):
    """A decided case that relied on intelligence a peer revoked, back for a senior reviewer's fresh look."""

    class State(models.TextChoices):
        OPEN = "open", "Waiting for a senior reviewer"
        DONE = "done", "Looked at again"

    case = models.ForeignKey("cases.Case", on_delete=models.PROTECT, related_name="+")
    decision = models.ForeignKey("cases.Decision", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    stix_id = models.CharField(max_length=128)
    reason = models.CharField(max_length=500)
    state = models.CharField(max_length=8, choices=State.choices, default=State.OPEN)
    opened_at = models.DateTimeField()
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="+")
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["opened_at", "id"]
        constraints = [models.UniqueConstraint(fields=["case", "stix_id"], name="inbound_rereview_once")]

    def __str__(self) -> str:
        return f"re-review of case {self.case_id} ({self.get_state_display()})"
