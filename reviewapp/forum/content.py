"""What a share may carry, after minimisation (DESIGN.md invariant 6; Lantern's rule: only what a human reviewed).

Pure reads. ``source_scope`` says which accounts a source covers and which of them may be included (a recorded
violation decision; not in the researcher programme unless an officer overrode that). ``version_content`` reads
what a version's bundle is built from: only the included accounts' flags received up to the version's cut-off,
so a flag that arrives later never changes an approved bundle. Excerpts come out redacted (emails, IP
addresses and the raw identifiers of every account in scope), exactly as the preview shows them.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db.models import Q

from flags.models import Flag
from reviewapp.cases.models import Account, Campaign, Case, CaseState, Decision
from reviewapp.policy.enforcement import Action

from .models import ShareAccount, ShareItemKind, ShareSource
from .tlp import NEVER_RESHARE_TLPS

# A decision that records a violation: taken (not waiting for approval, not sent back), not reversed on appeal.
VIOLATION_DECISION_STATES = (Decision.State.ENFORCED, Decision.State.LIFTED)
DECIDED_CASE_STATES = (CaseState.DECIDED, CaseState.CLOSED)
SIMHASH_RE = re.compile(r"^[0-9a-f]{16}$")
REDACTED = "[redacted]"
# Identifiers shorter than this are not searched for in excerpts (they would match ordinary words); platform
# account and organisation ids are far longer.
MIN_REDACTABLE_ID = 4
_EMAIL_RE = re.compile(r"[^\s@<>()\[\],;:\"']+@[^\s@<>()\[\],;:\"']+")
_IPV4_RE = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6_RE = re.compile(r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Fa-f:])")


class ShareError(ValueError):
    """A share that may not be made as asked; ``field`` names what to change."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def violation_decisions() -> Q:
    return Q(state__in=[s.value for s in VIOLATION_DECISION_STATES]) & ~Q(action=Action.NO_VIOLATION)


def accounts_with_violation(account_ids) -> set[int]:
    return set(Decision.objects.filter(violation_decisions(), account_id__in=list(account_ids))
               .values_list("account_id", flat=True))


def source_accounts(source: Case | Account | Campaign) -> tuple[ShareSource, list[Account], Campaign | None]:
    """The kind of source, the accounts it covers (by id) and the campaign it belongs to, if any."""
    if isinstance(source, Case):
        return ShareSource.CASE, [source.account], source.campaign
    if isinstance(source, Account):
        return ShareSource.ACCOUNT, [source], None
    if isinstance(source, Campaign):
        ids = Case.objects.filter(campaign=source).values("account_id").distinct()
        return ShareSource.CAMPAIGN, list(Account.objects.filter(pk__in=ids).order_by("pk")), source
    raise TypeError(f"a share's source is a Case, an Account or a Campaign, not {type(source).__name__}")


def check_source(source: Case | Account | Campaign) -> None:
    if isinstance(source, Case):
        if source.state not in DECIDED_CASE_STATES:
            raise ShareError("source", f"case {source.pk} is not decided (it is {source.get_state_display()})")
        if not Decision.objects.filter(violation_decisions(), case=source).exists():
            raise ShareError("source", f"case {source.pk} has no recorded violation decision")


def exclusion_for(account: Account, *, violating: set[int], overridden: set[int]) -> str:
    if account.pk not in violating:
        return ShareAccount.Exclusion.NO_VIOLATION
    if account.researcher_programme and account.pk not in overridden:
        return ShareAccount.Exclusion.RESEARCHER
    return ShareAccount.Exclusion.NONE


# ── what a version's bundle is built from ───────────────────────────────────────────────────────────────────

@dataclass(frozen=True)
class Fingerprint:
    simhash64: str
    slot_count: int | None
    flags: int
    rate_p50_per_day: int | None
    rate_p95_per_day: int | None


@dataclass(frozen=True)
class Excerpt:
    flag_id: int
    index: int
    account_id: int
    text: str  # redacted, exactly as it leaves

    @property
    def key(self) -> str:
        return excerpt_key(self.flag_id, self.index)


@dataclass
class Evidence:
    """The flags of the included accounts, reduced to what items can carry."""

    accounts: list[Account]
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    flag_count: int = 0
    request_count: int = 0
    fingerprints: dict[str, Fingerprint] = field(default_factory=dict)
    excerpts: dict[str, Excerpt] = field(default_factory=dict)
    # simhash → ids of the accounts whose flags carry it (the ledger: which accounts an indicator is about)
    fingerprint_accounts: dict[str, set[int]] = field(default_factory=dict)


def excerpt_key(flag_id: int, index: int) -> str:
    return f"{flag_id}:{index}"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def round_significant(value: float, digits: int = 2) -> int:
    """``value`` rounded to ``digits`` significant digits (12,345 → 12,000)."""
    if value <= 0:
        return 0
    magnitude = 10 ** max(math.floor(math.log10(value)) - digits + 1, 0)
    return int(round(value / magnitude) * magnitude)


def shareable_count(value: int) -> int | None:
    """A count as it may leave: rounded, or None (suppressed) below FORUM_SMALL_COUNT."""
    return None if value < settings.FORUM_SMALL_COUNT else round_significant(value)


def redact(text: str, *, identifiers: set[str]) -> str:
    """``text`` without email addresses, IP addresses or any of ``identifiers`` (the raw ids in scope)."""
    for identifier in sorted((i for i in identifiers if len(i) >= MIN_REDACTABLE_ID), key=len, reverse=True):
        text = re.sub(re.escape(identifier), REDACTED, text, flags=re.IGNORECASE)
    text = _EMAIL_RE.sub(REDACTED, text)
    text = _IPV4_RE.sub(REDACTED, text)
    # Errs towards redacting: a clock time like 10:30:00 looks like an IPv6 address too.
    return _IPV6_RE.sub(lambda m: REDACTED if any(c.isalnum() for c in m.group(0)) else m.group(0), text)


def raw_identifiers(accounts: list[Account]) -> set[str]:
    """Every raw identifier of these accounts: what must never leave."""
    found: set[str] = set()
    for account in accounts:
        found.update(v for v in (account.external_id, account.organization_id, account.contact_email) if v)
    return found


def _daily_rate(flag: dict) -> float | None:
    if not flag["request_count"]:
        return None
    days = max((flag["observed_to"] - flag["observed_from"]).total_seconds() / 86400, 1.0)
    return flag["request_count"] / days


def never_reshare(evidence: dict) -> bool:
    """Whether flag evidence came from another lab's object marked AMBER+STRICT or RED (or unmarked: we cannot
    tell, so it is treated as the strictest) — such intelligence is never put into one of our bundles
    (inbound.py writes ``evidence["forum"]["tlp"]`` on every flag of detector ``forum``)."""
    forum = evidence.get("forum")
    return isinstance(forum, dict) and (forum.get("tlp") in NEVER_RESHARE_TLPS or not forum.get("tlp"))


def gather_evidence(*, accounts: list[Account], scope: list[Account], cutoff: datetime) -> Evidence:
    """What the flags of ``accounts`` (the included ones) offer, received up to ``cutoff``; excerpts redacted of
    the raw identifiers of every account in ``scope``."""
    evidence = Evidence(accounts=accounts)
    by_external = {a.external_id: a for a in accounts}
    if not by_external:
        return evidence
    identifiers = raw_identifiers(scope)
    rates: dict[str, list[float]] = defaultdict(list)
    slots: dict[str, Counter] = defaultdict(Counter)
    counts: Counter = Counter()
    flags = (Flag.objects.filter(account_external_id__in=list(by_external), received_at__lte=cutoff)
             .order_by("id").values("id", "account_external_id", "observed_from", "observed_to", "request_count",
                                    "evidence"))
    for flag in flags:
        account = by_external[flag["account_external_id"]]
        evidence.flag_count += 1
        evidence.request_count += flag["request_count"] or 0
        evidence.first_seen = min(filter(None, [evidence.first_seen, flag["observed_from"]]))
        evidence.last_seen = max(filter(None, [evidence.last_seen, flag["observed_to"]]))
        body = flag["evidence"] if isinstance(flag["evidence"], dict) else {}
        if never_reshare(body):  # another lab's AMBER+STRICT or RED intelligence: nothing of it leaves again
            continue
        simhash = body.get("template_simhash64")
        if isinstance(simhash, str) and SIMHASH_RE.match(simhash.lower()):
            simhash = simhash.lower()
            counts[simhash] += 1
            evidence.fingerprint_accounts.setdefault(simhash, set()).add(account.pk)
            if type(body.get("slot_count")) is int and 0 <= body["slot_count"] < 10_000:
                slots[simhash][body["slot_count"]] += 1
            rate = _daily_rate(flag)
            if rate is not None:
                rates[simhash].append(rate)
        excerpts = body.get("excerpts")
        if isinstance(excerpts, list):
            for index, text in enumerate(excerpts):
                if isinstance(text, str) and text.strip():
                    evidence.excerpts[excerpt_key(flag["id"], index)] = Excerpt(
                        flag_id=flag["id"], index=index, account_id=account.pk,
                        text=redact(text, identifiers=identifiers))
    for simhash, n in counts.items():
        evidence.fingerprints[simhash] = Fingerprint(
            simhash64=simhash, flags=n,
            slot_count=slots[simhash].most_common(1)[0][0] if slots[simhash] else None,
            rate_p50_per_day=round_significant(percentile(rates[simhash], 0.5)) if rates[simhash] else None,
            rate_p95_per_day=round_significant(percentile(rates[simhash], 0.95)) if rates[simhash] else None,
        )
    return evidence


def check_free_text(field_name: str, text: str, *, scope: list[Account]) -> None:
    """Refuse proposer-typed text that would carry an identifier (an email, an IP address, a raw id in scope)."""
    if text and redact(text, identifiers=raw_identifiers(scope)) != text:
        raise ShareError(field_name, "must not contain an email address, an IP address or an account or "
                                     "organisation identifier")


@dataclass(frozen=True)
class ShareChoice:
    """What the proposer ticked. Prompt excerpts are off by default and ticked one by one, by (flag id, index)."""

    campaign_summary: bool = True
    fingerprints: frozenset[str] = frozenset()
    volume_stats: bool = True
    account_pseudonyms: bool = False
    organization_pseudonyms: bool = False
    excerpts: frozenset[tuple[int, int]] = frozenset()

    @property
    def carries_identifying_items(self) -> bool:
        """Pseudonyms or excerpts: only AMBER, AMBER+STRICT or RED may mark it."""
        return self.account_pseudonyms or self.organization_pseudonyms or bool(self.excerpts)

    def is_narrowing_of(self, other: ShareChoice) -> bool:
        flags = ("campaign_summary", "volume_stats", "account_pseudonyms", "organization_pseudonyms")
        return (all(getattr(other, f) or not getattr(self, f) for f in flags)
                and self.fingerprints <= other.fingerprints and self.excerpts <= other.excerpts)

    def items(self) -> list[tuple[str, str]]:
        """(kind, key) of each chosen item."""
        chosen = [(kind, "") for kind, on in (
            (ShareItemKind.CAMPAIGN_SUMMARY, self.campaign_summary), (ShareItemKind.VOLUME_STATS, self.volume_stats),
            (ShareItemKind.ACCOUNT_PSEUDONYMS, self.account_pseudonyms),
            (ShareItemKind.ORGANIZATION_PSEUDONYMS, self.organization_pseudonyms)) if on]
        chosen += [(ShareItemKind.FINGERPRINT, simhash) for simhash in sorted(self.fingerprints)]
        chosen += [(ShareItemKind.EXCERPT, excerpt_key(*pair)) for pair in sorted(self.excerpts)]
        return chosen

    @classmethod
    def from_items(cls, items) -> ShareChoice:
        kinds = {item.kind for item in items}
        return cls(
            campaign_summary=ShareItemKind.CAMPAIGN_SUMMARY in kinds, volume_stats=ShareItemKind.VOLUME_STATS in kinds,
            account_pseudonyms=ShareItemKind.ACCOUNT_PSEUDONYMS in kinds,
            organization_pseudonyms=ShareItemKind.ORGANIZATION_PSEUDONYMS in kinds,
            fingerprints=frozenset(i.key for i in items if i.kind == ShareItemKind.FINGERPRINT),
            excerpts=frozenset((i.flag_id, i.excerpt_index) for i in items if i.kind == ShareItemKind.EXCERPT),
        )
