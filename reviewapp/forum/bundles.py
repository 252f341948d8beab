"""The STIX 2.1 bundle of a share version, built deterministically with ``stix2`` (allow_custom=False).

``bundle_build(version)`` reads the version (items, frozen accounts, cut-off), re-checks who may still be
included (an account whose decision was reversed since, or that joined the researcher programme, leaves
nothing), and builds every object with ids from the proposal's random uuid and timestamps from the version.
The same database state therefore gives the same bytes: ``canonical`` is the RFC 8785 form, the bytes the
preview's SHA-256 is over, and the bytes the push sends (DESIGN.md invariant 6).

No raw account id, organisation id, email address or IP address goes into any object: accounts and
organisations appear only as keyed pseudonyms (and a ``user-account`` id is a UUIDv5 of the pseudonym),
excerpts only when ticked and only redacted.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import stix2
from django.conf import settings

from reviewapp.audit.chain import canonical_json

from . import pseudonyms
from .content import (
    Evidence,
    ShareChoice,
    accounts_with_violation,
    gather_evidence,
)
from .extensions import PROMPT_FINGERPRINT_EXT, PSEUDONYM_EXT, VOLUME_STATS_EXT
from .models import ShareAccount, ShareVersion, ShareWithdrawal
from .tlp import MARKING_IDS, Tlp, marking_definition
from .trust_groups import UnknownCollection, trust_group

SHARER_CREATED = "2026-01-01T00:00:00.000Z"
ATTACK_PATTERN_NAME = "Adversarial distillation"
ATTACK_PATTERN_DESCRIPTION = ("Opening many accounts and sending large volumes of structured prompts to harvest a "
                              "model's outputs and train a copy of it.")


def stix_time(moment: datetime) -> str:
    """A STIX timestamp with millisecond precision, in UTC."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def sharer_identity() -> stix2.Identity:
    """Us, the sharer: the same object in every bundle."""
    name = settings.FORUM_SHARER_NAME
    return stix2.Identity(
        id=f"identity--{uuid.uuid5(uuid.NAMESPACE_URL, 'reviewapp-forum-sharer:' + name)}", name=name,
        identity_class="organization", created=SHARER_CREATED, modified=SHARER_CREATED, allow_custom=False,
    )


@dataclass(frozen=True)
class LedgerEntry:
    """One object of a bundle and what it is about, for the ledger (``SharedObject``)."""

    object: dict
    account_ids: tuple[int, ...] = ()
    pseudonyms: tuple[str, ...] = ()
    key_id: str = ""


@dataclass
class BuiltBundle:
    bundle: dict
    canonical: bytes
    sha256: str
    entries: list[LedgerEntry]
    summary: dict = field(default_factory=dict)


def canonical_bytes(bundle: dict) -> bytes:
    return canonical_json(bundle)  # RFC 8785: the audit chain's canonicaliser, byte for byte rfc8785's


def sha256_of(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def included_accounts(version: ShareVersion) -> tuple[list, list]:
    """(scope, included): every account the version covers, and those that may leave now."""
    rows = list(version.accounts.select_related("account").order_by("account_id"))
    scope = [row.account for row in rows]
    violating = accounts_with_violation(a.pk for a in scope)
    # An account withdrawn from this share (its decision overturned, even for a lesser action) never leaves in it.
    withdrawn = set(ShareWithdrawal.objects.filter(proposal_id=version.proposal_id, account__isnull=False)
                    .values_list("account_id", flat=True))
    included = [row.account for row in rows if row.excluded == ShareAccount.Exclusion.NONE
                and row.account.pk in violating and row.account.pk not in withdrawn
                and (not row.account.researcher_programme or row.override_reason)]
    return scope, included


class _Builder:
    def __init__(self, version: ShareVersion, *, evidence: Evidence, choice: ShareChoice, key):
        self.version = version
        self.proposal = version.proposal
        self.evidence = evidence
        self.choice = choice
        self.key = key
        self.timestamp = stix_time(version.created_at)
        self.markings = [MARKING_IDS[Tlp(version.tlp)]]
        self.identity = sharer_identity()
        self.entries: list[LedgerEntry] = []
        self.included_ids = tuple(a.pk for a in evidence.accounts)
        self.first_seen = stix_time(evidence.first_seen) if evidence.first_seen else self.timestamp
        self.last_seen = stix_time(evidence.last_seen) if evidence.last_seen else self.timestamp

    def sid(self, stix_type: str, role: str) -> str:
        return f"{stix_type}--{uuid.uuid5(self.proposal.uuid, role)}"

    def common(self, stix_type: str, role: str) -> dict:
        return {"id": self.sid(stix_type, role), "created": self.timestamp, "modified": self.timestamp,
                "created_by_ref": self.identity.id, "object_marking_refs": self.markings, "allow_custom": False}

    def add(self, obj, *, account_ids=(), pseudonyms_=(), key_id="") -> dict:
        body = json.loads(obj.serialize()) if not isinstance(obj, dict) else obj
        self.entries.append(LedgerEntry(object=body, account_ids=tuple(account_ids), pseudonyms=tuple(pseudonyms_),
                                        key_id=key_id))
        return body

    def relationship(self, source: str, kind: str, target: str, role: str) -> None:
        self.add(stix2.Relationship(source_ref=source, relationship_type=kind, target_ref=target,
                                    **self.common("relationship", role)), account_ids=self.included_ids)

    def build(self) -> None:
        self.add(self.identity)
        self.add(json.loads(stix2.parse(marking_definition(self.version.tlp), allow_custom=False).serialize()))
        if not self.evidence.accounts:
            return
        anchor = self.identity.id
        if self.choice.campaign_summary:
            anchor = self.campaign()
        indicators = self.fingerprints(campaign=anchor if self.choice.campaign_summary else None)
        if anchor == self.identity.id and indicators:
            anchor = indicators[0]
        if self.choice.volume_stats:
            self.volume(anchor)
        if self.choice.account_pseudonyms and len(self.evidence.accounts) >= settings.FORUM_MIN_CLUSTER_SIZE:
            self.account_pseudonyms(anchor)
        if self.choice.organization_pseudonyms:
            self.organization_pseudonyms(anchor)
        for flag_id, index in sorted(self.choice.excerpts):
            excerpt = self.evidence.excerpts.get(f"{flag_id}:{index}")
            if excerpt is not None:
                self.add(stix2.Note(abstract="Prompt excerpt", content=excerpt.text, object_refs=[anchor],
                                    **self.common("note", f"excerpt:{flag_id}:{index}")),
                         account_ids=(excerpt.account_id,))

    def campaign(self) -> str:
        campaign = stix2.Campaign(
            name=f"Distillation campaign {self.proposal.uuid.hex[:8]}",
            description="Accounts reviewed by a person and found to breach the terms of service by harvesting "
                        "model outputs at scale.",
            first_seen=self.first_seen, last_seen=self.last_seen, **self.common("campaign", "campaign"))
        self.add(campaign, account_ids=self.included_ids)
        pattern = stix2.AttackPattern(name=ATTACK_PATTERN_NAME, description=ATTACK_PATTERN_DESCRIPTION,
                                      **self.common("attack-pattern", "attack-pattern"))
        self.add(pattern, account_ids=self.included_ids)
        self.relationship(campaign.id, "uses", pattern.id, "campaign-uses-attack-pattern")
        if self.version.intrusion_set_name:
            intrusion_set = stix2.IntrusionSet(name=self.version.intrusion_set_name,
                                               **self.common("intrusion-set", "intrusion-set"))
            self.add(intrusion_set, account_ids=self.included_ids)
            self.relationship(campaign.id, "attributed-to", intrusion_set.id, "campaign-attributed-to")
        return campaign.id

    def fingerprints(self, *, campaign: str | None) -> list[str]:
        ids = []
        for simhash in sorted(self.choice.fingerprints):
            fingerprint = self.evidence.fingerprints.get(simhash)
            if fingerprint is None:
                continue
            pattern = f"[x-prompt-signature:simhash64 = '{simhash}']"
            if fingerprint.rate_p50_per_day and fingerprint.rate_p50_per_day >= 2:
                pattern += f" REPEATS {fingerprint.rate_p50_per_day} TIMES WITHIN 86400 SECONDS"
            extension = {"extension_type": "property-extension", "template_simhash64": simhash}
            for name in ("slot_count", "rate_p50_per_day", "rate_p95_per_day"):
                if getattr(fingerprint, name) is not None:
                    extension[name] = getattr(fingerprint, name)
            indicator = stix2.Indicator(
                name=f"Prompt template {simhash}",
                description="Prompts built on one template (64-bit simhash of its skeleton, slots removed), sent "
                            "at the daily rates given; no prompt text.",
                indicator_types=["malicious-activity"], pattern=pattern, pattern_type="stix",
                valid_from=self.first_seen, extensions={PROMPT_FINGERPRINT_EXT: extension},
                **self.common("indicator", f"fingerprint:{simhash}"))
            about = tuple(sorted(self.evidence.fingerprint_accounts.get(simhash, ())))
            self.add(indicator, account_ids=about)
            if campaign:
                self.relationship(indicator.id, "indicates", campaign, f"indicates:{simhash}")
            ids.append(indicator.id)
        return ids

    def volume(self, anchor: str) -> None:
        from .content import shareable_count

        extension: dict = {"extension_type": "property-extension"}
        suppressed = []
        for name, value in (("account_count", len(self.evidence.accounts)), ("flag_count", self.evidence.flag_count),
                            ("request_count", self.evidence.request_count)):
            shown = shareable_count(value)
            if shown is None:
                suppressed.append(name)
            else:
                extension[name] = shown
        extension["suppressed_below"] = settings.FORUM_SMALL_COUNT
        if suppressed:
            extension["suppressed"] = suppressed
        sighting = stix2.Sighting(sighting_of_ref=anchor, where_sighted_refs=[self.identity.id],
                                  first_seen=self.first_seen, last_seen=self.last_seen,
                                  extensions={VOLUME_STATS_EXT: extension}, **self.common("sighting", "volume"))
        self.add(sighting, account_ids=self.included_ids)

    def _pseudonym_extension(self) -> dict:
        return {PSEUDONYM_EXT: {"extension_type": "property-extension", "scheme": pseudonyms.SCHEME,
                                "key_id": self.key.id}}

    def account_pseudonyms(self, anchor: str) -> None:
        made = sorted((pseudonyms.account_pseudonym(a.external_id, key=self.key), a.pk) for a in self.evidence.accounts)
        refs = []
        for value, account_id in made:
            account = stix2.UserAccount(user_id=value, object_marking_refs=self.markings,
                                        extensions=self._pseudonym_extension(), allow_custom=False)
            self.add(account, account_ids=(account_id,), pseudonyms_=(value,), key_id=self.key.id)
            refs.append(account.id)
        observed = stix2.ObservedData(first_observed=self.first_seen, last_observed=self.last_seen, number_observed=1,
                                      object_refs=refs, **self.common("observed-data", "accounts"))
        self.add(observed, account_ids=tuple(pk for _, pk in made), pseudonyms_=tuple(v for v, _ in made),
                 key_id=self.key.id)
        self.relationship(observed.id, "related-to", anchor, "accounts-related-to")

    def organization_pseudonyms(self, anchor: str) -> None:
        members: dict[str, list[int]] = {}
        for account in self.evidence.accounts:
            if account.organization_id:
                members.setdefault(account.organization_id, []).append(account.pk)
        made = sorted((pseudonyms.organization_pseudonym(org, key=self.key), ids) for org, ids in members.items())
        for value, account_ids in made:
            organization = stix2.Identity(name=value, identity_class="organization",
                                          extensions=self._pseudonym_extension(),
                                          **self.common("identity", f"organization:{value}"))
            self.add(organization, account_ids=tuple(account_ids), key_id=self.key.id)
            self.relationship(anchor, "related-to", organization.id, f"related-to-organization:{value}")

    def summary(self) -> dict:
        types = [e.object["type"] for e in self.entries]
        try:
            destination = trust_group(self.version.collection_id).name
        except UnknownCollection:
            destination = self.version.collection_id
        return {
            "account_pseudonyms": types.count("user-account"),
            "organization_pseudonyms": sum(1 for e in self.entries if e.object["type"] == "identity"
                                           and e.object["id"] != self.identity.id),
            "fingerprints": types.count("indicator"),
            "excerpts": types.count("note"),
            "campaign_summary": "campaign" in types,
            "volume_stats": "sighting" in types,
            "accounts_included": len(self.evidence.accounts),
            "objects": len(self.entries),
            "tlp": Tlp(self.version.tlp).label,
            "destination": destination,
        }


def bundle_build(version: ShareVersion, *, without: frozenset[int] = frozenset()) -> BuiltBundle:
    """The version's bundle as it would leave now (deterministic: same state, same bytes). ``without``: account
    pks left out as if never included (a withdrawal compares what the share would hold without them)."""
    scope, included = included_accounts(version)
    included = [a for a in included if a.pk not in without]
    choice = ShareChoice.from_items(list(version.items.all()))
    evidence = gather_evidence(accounts=included, scope=scope, cutoff=version.created_at)
    key = pseudonyms.forum_key() if (choice.account_pseudonyms or choice.organization_pseudonyms) else None
    builder = _Builder(version, evidence=evidence, choice=choice, key=key)
    builder.build()
    bundle = stix2.Bundle(objects=[e.object for e in builder.entries], allow_custom=False,
                          id=f"bundle--{uuid.uuid5(version.proposal.uuid, f'bundle:{version.number}')}")
    body = json.loads(bundle.serialize())
    canonical = canonical_bytes(body)
    return BuiltBundle(bundle=body, canonical=canonical, sha256=sha256_of(canonical), entries=builder.entries,
                       summary=builder.summary())


def what_leaves(summary: dict) -> str:
    """The plain-language line beside the bundle: '12 account pseudonyms, 3 fingerprints, … to Frontier labs'."""
    def count(n: int, one: str, many: str) -> str:
        return f"{n:,} {one if n == 1 else many}"

    parts = [
        count(summary.get("account_pseudonyms", 0), "account pseudonym", "account pseudonyms"),
        count(summary.get("organization_pseudonyms", 0), "organisation pseudonym", "organisation pseudonyms"),
        count(summary.get("fingerprints", 0), "fingerprint", "fingerprints"),
        count(summary.get("excerpts", 0), "prompt excerpt", "prompt excerpts"),
    ]
    if summary.get("campaign_summary"):
        parts.append("a campaign summary")
    if summary.get("volume_stats"):
        parts.append("rounded volume statistics")
    return f"{', '.join(parts)}, {summary.get('tlp', '')}, to {summary.get('destination', '')}"
