"""Reads of Forum sharing for pages and the API (F1/F4 add theirs here).

``shares_about_account(account)`` (F2): for the holders' portal and the outcome message, each share that sent
something about the account to the Forum — to which trust group, when, what kind of information, and whether
(and why) it was withdrawn. It reads the ledger (what left), not the proposals (what was meant to).

``flag_withdrawals(flag_ids)``: for the case page (flags.withdrawals), which forum-detector flags came from an
object the peer has since revoked, and when.
"""

from __future__ import annotations

from django.db.models import OuterRef, Q, Subquery
from django.utils.dateparse import parse_datetime

from appeals.recipients import Disclosure
from flags.withdrawals import FlagRef, FlagWithdrawal

from .models import ForumPush, InboundMatch, InboundObject, SharedObject, ShareWithdrawal
from .trust_groups import UnknownCollection, trust_group

# The kinds of object we send, in the words a holder reads (bundles.py builds them).
_KINDS = {
    "user-account": "a pseudonym of your account (a keyed code, not your account name or email address)",
    "observed-data": "a pseudonym of your account (a keyed code, not your account name or email address)",
    "identity": "a pseudonym of your organisation (a keyed code, not its name)",
    "indicator": "fingerprints of the structure of prompts sent from your account (no prompt text)",
    "note": "excerpts of prompts sent from your account",
    "campaign": "that your account was part of a campaign we reviewed",
    "attack-pattern": "that your account was part of a campaign we reviewed",
    "intrusion-set": "that your account was part of a campaign we reviewed",
    "sighting": "rounded counts of the campaign's volume",
}
_ORDER = list(dict.fromkeys(_KINDS.values()))


def _recipient(collection_id: str) -> str:
    try:
        group = trust_group(collection_id).name
    except UnknownCollection:
        group = collection_id
    return f"the Frontier Model Forum ({group})"


def shares_about_account(account) -> list[Disclosure]:
    """Each share that sent something about ``account`` (first sending per share), oldest first."""
    rows = (SharedObject.objects.filter(account_ids__contains=[account.pk], proposal__isnull=False,
                                        push__purpose=ForumPush.Purpose.SHARE)
            .values("proposal_id", "collection_id", "stix_type", "push__sent_at", "recorded_at"))
    shares: dict[int, dict] = {}
    for row in rows:
        share = shares.setdefault(row["proposal_id"], {"collection_id": row["collection_id"], "kinds": set(),
                                                      "at": row["push__sent_at"] or row["recorded_at"]})
        share["kinds"].add(_KINDS.get(row["stix_type"], "information about your account"))
        share["at"] = min(share["at"], row["push__sent_at"] or row["recorded_at"])
    withdrawals: dict[int, ShareWithdrawal] = {}
    mine = ShareWithdrawal.objects.filter(Q(account=account) | Q(account=None), proposal_id__in=list(shares))
    for withdrawal in mine.order_by("withdrawn_at", "id"):
        withdrawals.setdefault(withdrawal.proposal_id, withdrawal)
    found = []
    for proposal_id, share in shares.items():
        withdrawal = withdrawals.get(proposal_id)
        because = ""
        if withdrawal is not None:
            because = (f"the decision about your account was reversed on appeal no. {withdrawal.appeal_id}"
                       if withdrawal.appeal_id else "we withdrew what we had shared"
                       if withdrawal.account_id is None else "we withdrew what we had shared about your account")
        found.append(Disclosure(
            recipient=_recipient(share["collection_id"]), shared_at=share["at"],
            what=tuple(sorted(share["kinds"], key=lambda k: _ORDER.index(k) if k in _ORDER else len(_ORDER))),
            withdrawn_at=withdrawal.withdrawn_at if withdrawal else None, withdrawn_because=because,
            withdrawn_for_appeal=withdrawal.appeal_id if withdrawal else None))
    return sorted(found, key=lambda d: d.shared_at)


def stix_minute(stix_timestamp: str) -> str:
    """"2026-11-04T00:00:00.000Z" → "2026-11-04 00:00 UTC"; "" for what is not a timestamp."""
    moment = parse_datetime(stix_timestamp) if isinstance(stix_timestamp, str) and stix_timestamp else None
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else ""


def _when(stix_timestamp: str, fallback) -> str:
    return stix_minute(stix_timestamp) or f"{fallback:%Y-%m-%d %H:%M} UTC"


def flag_withdrawals(flags: list[FlagRef]) -> dict[int, FlagWithdrawal]:
    """The flags.withdrawals provider (registered in ForumConfig.ready()): which of these flags came from Forum
    intelligence the peer has since withdrawn, and how — "peer revoked object X at T" (T: the STIX ``modified`` of
    the revoking version) or a new version that no longer lists the account. One query for the forum detector's
    flags among them, none when there are none."""
    from .inbound import FORUM_DETECTOR  # inbound imports the pipeline; ready() imports this module

    forum = {ref.external_id: ref.id for ref in flags if ref.detector == FORUM_DETECTOR}
    if not forum:
        return {}
    newest = (InboundObject.objects.filter(stix_id=OuterRef("stix_id"), collection_id=OuterRef("collection_id"))
              .order_by("-modified", "-pk"))
    matches = (InboundMatch.objects.filter(flag_external_id__in=sorted(forum), withdrawn_at__isnull=False)
               .annotate(source_modified=Subquery(newest.values("modified")[:1]),
                         source_revoked=Subquery(newest.values("revoked")[:1]))
               .values("flag_external_id", "stix_id", "withdrawn_at", "source_modified", "source_revoked"))
    found = {}
    for match in matches:
        when = _when(match["source_modified"] or "", match["withdrawn_at"])
        detail = (f"peer revoked object {match['stix_id']} at {when}" if match["source_revoked"] else
                  f"peer's new version of object {match['stix_id']} at {when} no longer lists the account")
        flag_id = forum[match["flag_external_id"]]
        found[flag_id] = FlagWithdrawal(flag_id=flag_id, withdrawn_at=match["withdrawn_at"],
                                        label="withdrawn by the source", detail=detail)
    return found
