"""What a proposer may choose from, and the exact preview an approver approves (DESIGN.md invariants 2 and 6).

Both show raw prompt excerpts (redacted as they would leave), so each is an audited evidence opening
(``evidence.opened`` on every case whose flags' excerpts are shown), like ``flags.evidence.evidence_open``.
Pages and the API call these; they never build bundles themselves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied
from django.utils import timezone

from reviewapp.cases.models import Account, Campaign, Case

from .bundles import BuiltBundle, bundle_build, what_leaves
from .content import (
    Excerpt,
    Fingerprint,
    accounts_with_violation,
    check_source,
    exclusion_for,
    gather_evidence,
    source_accounts,
)
from .models import ShareAccount, ShareProposal, ShareVersion
from .services import current_version, excerpts_opened


@dataclass
class Candidates:
    """Everything a proposer may tick for a source, and which accounts are left out and why."""

    accounts: list[tuple[Account, str]]  # (account, exclusion: "" = included)
    fingerprints: list[Fingerprint]
    excerpts: list[Excerpt]
    campaign: Campaign | None = None

    @property
    def included(self) -> list[Account]:
        return [a for a, excluded in self.accounts if not excluded]


@dataclass
class Preview:
    proposal: ShareProposal
    version: ShareVersion
    built: BuiltBundle
    what_leaves: str
    excerpts: list[dict] = field(default_factory=list)
    accounts: list[ShareAccount] = field(default_factory=list)

    @property
    def sha256(self) -> str:
        return self.built.sha256

    @property
    def canonical_text(self) -> str:
        """The exact bytes that leave (RFC 8785), as text."""
        return self.built.canonical.decode()

    @property
    def pretty(self) -> str:
        """The same bundle indented for reading (same content; the hash is over ``canonical_text``)."""
        return json.dumps(self.built.bundle, indent=2, sort_keys=True, ensure_ascii=False)


def share_candidates(*, user, source: Case | Account | Campaign) -> Candidates:
    """What ``user`` may propose to share about ``source``: audited, since it lists prompt excerpts."""
    if not user.has_perm("forum.propose_share"):
        raise PermissionDenied("Your role does not propose Forum shares.")
    check_source(source)
    _kind, accounts, campaign = source_accounts(source)
    violating = accounts_with_violation(a.pk for a in accounts)
    rows = [(a, exclusion_for(a, violating=violating, overridden=set())) for a in accounts]
    included = [a for a, excluded in rows if not excluded]
    evidence = gather_evidence(accounts=included, scope=accounts, cutoff=timezone.now())
    excerpts = sorted(evidence.excerpts.values(), key=lambda e: (e.flag_id, e.index))
    if excerpts:
        what = f"{type(source).__name__.lower()} {source.pk}"
        excerpts_opened(user=user, flag_ids={e.flag_id for e in excerpts},
                        context=f"Forum share proposal: choosing excerpts ({what})")
    return Candidates(accounts=rows, fingerprints=sorted(evidence.fingerprints.values(), key=lambda f: f.simhash64),
                      excerpts=excerpts, campaign=campaign)


def can_preview(user, proposal: ShareProposal) -> bool:
    return (user.pk == proposal.proposed_by_id or user.has_perm("forum.approve_share")
            or user.has_perm("forum.view_shareproposal"))


def share_preview(*, user, proposal: ShareProposal, version_number: int | None = None) -> Preview:
    """The exact bundle of a version (the current one by default) as it would leave now, its SHA-256 (what an
    approval names) and the plain-language line; audited when it shows excerpts. ``PermissionDenied`` (404
    upstream) for anyone who is neither the proposer, a sharing officer nor a reader of shares."""
    if not can_preview(user, proposal):
        raise PermissionDenied("You may not see this share.")
    version = current_version(proposal) if version_number is None else proposal.versions.get(number=version_number)
    built = bundle_build(version)
    notes = [o for o in built.bundle["objects"] if o["type"] == "note"]
    excerpt_items = list(version.items.filter(kind="excerpt").order_by("flag_id", "excerpt_index"))
    if notes:
        excerpts_opened(user=user, flag_ids={i.flag_id for i in excerpt_items},
                        context=f"Forum share {proposal.pk} v{version.number} preview")
    return Preview(proposal=proposal, version=version, built=built, what_leaves=what_leaves(built.summary),
                   excerpts=[{"id": n["id"], "content": n["content"]} for n in notes],
                   accounts=list(version.accounts.select_related("account", "override_by").order_by("account_id")))
