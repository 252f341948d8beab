"""Inbound intelligence: what other labs share in the collections we pull, matched against our accounts and
flag evidence, each match a flag from detector ``forum`` for normal grouping and human review (never automatic
enforcement); a peer's revocation withdraws what we derived from it (DESIGN.md invariant 6).

Pull (``inbound_pull``, beat task ``forum.tasks.pull_inbound``): per collection, pages after the stored
``added_after`` cursor; each page is one transaction (objects, matches, flags, revocations, the cursor), so a
hub that fails or a worker killed mid-pull leaves the cursor at the last page stored (just before its last date
while more pages follow: ``_cursor_after``), and the next pull goes on from there. Idempotent on (object id,
``modified``, collection): pulling again stores nothing new. Objects we made (``created_by_ref`` = our identity,
or an id in our own ledger) are never stored as inbound.

Matching cost is flat in the number of local accounts:
- pseudonyms: ``AccountPseudonym`` holds each local account's pseudonym under the current key id (unique index);
  a page's pseudonyms are matched in one indexed lookup (``pseudonym = ANY(...)``). The table is filled by
  ``pseudonyms_backfill`` (run before every pull and by its own beat entry) for accounts that have none yet;
- fingerprints: ``LocalFingerprint`` holds each (account, simhash) of local flag evidence split into four 16-bit
  bands, each indexed. Two 64-bit simhashes within Hamming distance d <= 3 agree exactly on at least one of
  d + 1 = 4 bands (pigeonhole), so an inbound simhash costs four index probes, and only the candidates found are
  compared bit by bit. ``FORUM_SIMHASH_MAX_DISTANCE`` (default 3) cannot exceed 3 with four bands.
  ``fingerprints_backfill`` fills it from flags after its cursor (flag ids), re-reading a trailing window of
  ``_FLAG_ID_WINDOW`` ids so a flag committed late (a lower id committed after a higher one) is not missed.

A match is a flag once: ``InboundMatch`` is unique on (object id, account) and the flag's external id is
``<object id>/<account pk>`` (flags are unique per detector + external id).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db import connection, transaction
from django.utils import timezone

from flags.models import Detector, Flag
from flags.selectors import flags_by_external_id
from flags.services import detector_ensure, flags_ingest
from reviewapp.audit.actions import AuditAction
from reviewapp.audit.services import SYSTEM, Target, record
from reviewapp.cases.models import Account, Case, Decision
from reviewapp.cases.services import case_transition

from . import taxii
from .bundles import LedgerEntry, sharer_identity
from .extensions import PROMPT_FINGERPRINT_EXT, PSEUDONYM_EXT
from .models import (
    AccountPseudonym,
    ForumPush,
    InboundMatch,
    InboundObject,
    InboundReReview,
    LocalFingerprint,
    MatchIndexState,
    PullCursor,
    SharedObject,
)
from .pseudonyms import account_pseudonym, forum_key
from .tlp import Tlp, marking_definition, tlp_of
from .trust_groups import TrustGroup, trust_group, trust_groups

FORUM_DETECTOR = "forum"
SOURCE_WITHDRAWN = "source withdrawn"
BANDS = 4
MAX_DISTANCE_LIMIT = BANDS - 1
_FLAG_ID_WINDOW = 10_000
_BACKFILL_BATCH = 5_000
_SIMHASH_RE = re.compile(r"^[0-9a-f]{16}$")
_PATTERN_SIMHASH_RE = re.compile(r"x-prompt-signature:simhash64\s*=\s*'([0-9a-fA-F]{16})'")


class InboundError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


# ── simhash bands ─────────────────────────────────────────────────────────────────────────────────────────────

def max_distance() -> int:
    distance = int(getattr(settings, "FORUM_SIMHASH_MAX_DISTANCE", MAX_DISTANCE_LIMIT))
    if not 0 <= distance <= MAX_DISTANCE_LIMIT:
        raise ImproperlyConfigured(f"FORUM_SIMHASH_MAX_DISTANCE must be between 0 and {MAX_DISTANCE_LIMIT} "
                                   f"(four 16-bit bands), not {distance}")
    return distance


def simhash_int(text: str) -> int:
    """The 64 bits of a hex simhash as PostgreSQL's signed bigint."""
    value = int(text, 16)
    return value - (1 << 64) if value >= 1 << 63 else value


def bands(value: int) -> tuple[int, ...]:
    unsigned = value & 0xFFFF_FFFF_FFFF_FFFF
    return tuple((unsigned >> (16 * i)) & 0xFFFF for i in range(BANDS))


def hamming(a: int, b: int) -> int:
    return ((a ^ b) & 0xFFFF_FFFF_FFFF_FFFF).bit_count()


# ── matching indexes ──────────────────────────────────────────────────────────────────────────────────────────

def pseudonyms_backfill(*, limit: int | None = None) -> int:
    """Store the pseudonym under the current key id of every local account that has none: how many stored."""
    key = forum_key()
    stored = 0
    while limit is None or stored < limit:
        batch = list(Account.objects.exclude(pk__in=AccountPseudonym.objects.filter(key_id=key.id)
                                             .values("account_id"))
                     .order_by("pk").values_list("pk", "external_id")[:_BACKFILL_BATCH])
        if not batch:
            break
        AccountPseudonym.objects.bulk_create(
            [AccountPseudonym(account_id=pk, key_id=key.id, pseudonym=account_pseudonym(external_id, key=key))
             for pk, external_id in batch], ignore_conflicts=True)
        stored += len(batch)
    return stored


def fingerprints_backfill() -> int:
    """Index the simhashes of flag evidence received since the last run (flags are never rewritten)."""
    state, _ = MatchIndexState.objects.get_or_create(name="local_fingerprints")
    start = max(state.last_id - _FLAG_ID_WINDOW, 0)
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT f.id, a.id, lower(f.evidence->>'template_simhash64') FROM flags_flag f
               JOIN cases_account a ON a.external_id = f.account_external_id
               WHERE f.id > %s AND f.evidence ? 'template_simhash64'
                 AND f.detector_id <> ALL(SELECT id FROM flags_detector WHERE slug = %s)  -- a peer's, not ours
               ORDER BY f.id""", [start, FORUM_DETECTOR])
        rows = cursor.fetchall()
        cursor.execute("SELECT coalesce(max(id), 0) FROM flags_flag")
        top = cursor.fetchone()[0]
    objects = []
    for flag_id, account_id, text in rows:
        if text and _SIMHASH_RE.match(text):
            value = simhash_int(text)
            b = bands(value)
            objects.append(LocalFingerprint(account_id=account_id, simhash=value, flag_id=flag_id,
                                            band0=b[0], band1=b[1], band2=b[2], band3=b[3]))
    LocalFingerprint.objects.bulk_create(objects, ignore_conflicts=True, batch_size=_BACKFILL_BATCH)
    # Flags whose account has no row yet (not grouped) are re-read while inside the window.
    MatchIndexState.objects.filter(pk=state.pk).update(last_id=max(state.last_id, top))
    return len(objects)


def pseudonym_matches(pseudonyms: set[str], *, key_id: str) -> dict[str, int]:
    """pseudonym → local account pk, one indexed lookup for the whole set."""
    if not pseudonyms:
        return {}
    return dict(AccountPseudonym.objects.filter(key_id=key_id, pseudonym__in=sorted(pseudonyms))
                .values_list("pseudonym", "account_id"))


def fingerprint_matches(simhashes: set[str]) -> dict[str, list[tuple[int, int]]]:
    """inbound simhash → [(local account pk, Hamming distance)] within FORUM_SIMHASH_MAX_DISTANCE: per simhash,
    one probe of each band's index, then the candidates compared bit by bit."""
    limit = max_distance()
    found: dict[str, list[tuple[int, int]]] = {}
    for text in sorted(simhashes):
        value = simhash_int(text)
        b = bands(value)
        with connection.cursor() as cursor:
            cursor.execute(
                """SELECT account_id, simhash FROM forum_localfingerprint
                   WHERE band0 = %s OR band1 = %s OR band2 = %s OR band3 = %s""", list(b))
            best: dict[int, int] = {}
            for account_id, local in cursor.fetchall():
                distance = hamming(value, local)
                if distance <= limit:
                    best[account_id] = min(distance, best.get(account_id, 64))
        if best:
            found[text] = sorted(best.items())
    return found


# ── reading inbound objects ───────────────────────────────────────────────────────────────────────────────────

def inbound_simhash(obj: dict) -> str | None:
    """The template simhash an indicator carries (its property extension, else its pattern)."""
    if obj.get("type") != "indicator":
        return None
    ext = (obj.get("extensions") or {}).get(PROMPT_FINGERPRINT_EXT) or {}
    text = ext.get("template_simhash64") if isinstance(ext, dict) else None
    if not isinstance(text, str):
        found = _PATTERN_SIMHASH_RE.search(obj.get("pattern") or "")
        text = found.group(1) if found else None
    text = text.lower() if isinstance(text, str) else None
    return text if text and _SIMHASH_RE.match(text) else None


def _sco_pseudonym(obj: dict, key_id: str) -> str | None:
    if obj.get("type") != "user-account":
        return None
    ext = (obj.get("extensions") or {}).get(PSEUDONYM_EXT) or {}
    if not isinstance(ext, dict) or ext.get("key_id") != key_id:  # another key: nothing we can match
        return None
    value = obj.get("user_id")
    return value if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value) else None


def _version(obj: dict) -> str:
    return obj.get("modified", "") if isinstance(obj.get("modified"), str) else ""


@dataclass
class PullResult:
    collection_id: str
    pages: int = 0
    stored: int = 0
    skipped_own: int = 0
    matches: int = 0
    flags_created: int = 0
    revoked: int = 0
    cursor: str = ""
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("collection_id", "pages", "stored", "skipped_own", "matches",
                                              "flags_created", "revoked", "cursor")}


def inbound_pull_all() -> list[PullResult]:
    """Pull every configured collection (the beat task): one collection's hub failure does not stop the rest."""
    pseudonyms_backfill()
    fingerprints_backfill()
    results = []
    for group in trust_groups():
        try:
            results.append(inbound_pull(group=group))
        except taxii.HubUnavailable as exc:
            results.append(PullResult(collection_id=group.collection_id, errors=[str(exc)]))
    return results


def inbound_pull(*, group: TrustGroup, per_request: int = 100) -> PullResult:
    """Pull one collection after its cursor, page by page (each page its own transaction)."""
    result = PullResult(collection_id=group.collection_id)
    cursor, _ = PullCursor.objects.get_or_create(collection_id=group.collection_id)
    result.cursor = cursor.added_after
    for page in taxii.pull(group, added_after=cursor.added_after, per_request=per_request):
        _page_store(group, page, result)
        result.pages += 1
    return result


@transaction.atomic
def _page_store(group: TrustGroup, page: taxii.Page, result: PullResult) -> None:
    cursor = PullCursor.objects.select_for_update().get(collection_id=group.collection_id)
    ours = sharer_identity().id
    own_ids = set(SharedObject.objects.filter(stix_id__in=[o.get("id") for o in page.objects])
                  .values_list("stix_id", flat=True))
    # SCOs carry no created_by_ref: those our own objects on the page point at are ours too (the ledger has them
    # as well, once our push was recorded).
    own_ids.update(ref for o in page.objects if isinstance(o, dict) and o.get("created_by_ref") == ours
                   for ref in o.get("object_refs") or [] if isinstance(ref, str))
    existing = set(InboundObject.objects.filter(collection_id=group.collection_id,
                                                stix_id__in=[o.get("id") for o in page.objects])
                   .values_list("stix_id", "modified"))
    now = timezone.now()
    new: list[InboundObject] = []
    for obj in page.objects:
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
            continue
        if obj.get("created_by_ref") == ours or obj["id"] in own_ids or obj["id"] == ours:
            result.skipped_own += 1
            continue
        if (obj["id"], _version(obj)) in existing:
            continue
        existing.add((obj["id"], _version(obj)))
        tlp = tlp_of(obj.get("object_marking_refs"))
        new.append(InboundObject(stix_id=obj["id"][:128], modified=_version(obj)[:32],
                                 stix_type=str(obj.get("type", ""))[:64],
                                 collection_id=group.collection_id,
                                 source_identity=str(obj.get("created_by_ref") or "")[:128],
                                 tlp=tlp.value if tlp else "", revoked=bool(obj.get("revoked")), body=obj,
                                 received_at=now))
    InboundObject.objects.bulk_create(new, ignore_conflicts=True)
    result.stored += len(new)
    if new:
        stored = {(o.stix_id, o.modified): o for o in InboundObject.objects.filter(
            collection_id=group.collection_id, stix_id__in=[o.stix_id for o in new])}
        fresh = [stored[(o.stix_id, o.modified)] for o in new if (o.stix_id, o.modified) in stored]
        _revocations(fresh, result)
        _match(fresh, group, result)
    after = _cursor_after(page)
    if after:
        cursor.added_after = after
    cursor.pulled_at = now
    cursor.save(update_fields=["added_after", "pulled_at"])
    result.cursor = cursor.added_after
    record(actor=SYSTEM, action=AuditAction.FORUM_INBOUND_PULLED, target=Target("forum_collection",
                                                                                 group.collection_id),
           data={"objects": len(page.objects), "stored": len(new), "cursor": cursor.added_after})


def _cursor_after(page: taxii.Page) -> str:
    """The cursor once this page is stored: every object the hub dated at or before it is stored.

    ``added_after`` is exclusive and a hub dates all objects of one POST alike, so while more pages follow, the
    next may hold objects dated exactly ``added_last``: the cursor stops just before that instant (they are read
    again, and stored once: pulls are idempotent). Cursoring on ``added_last`` itself lost the rest of a bundle
    split across pages whenever the pull stopped between them (a worker killed, the hub gone). "" = keep it."""
    if not page.added_last or not page.more:
        return page.added_last
    try:
        last = datetime.fromisoformat(page.added_last.replace("Z", "+00:00"))
    except ValueError:
        return ""  # a date we cannot step back from: keep the cursor where it was (the pages are read again)
    return (last - timedelta(microseconds=1)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _newest(stix_id: str, collection_id: str) -> InboundObject | None:
    return (InboundObject.objects.filter(stix_id=stix_id, collection_id=collection_id)
            .order_by("-modified", "-id").first())


def _sco_pseudonyms(refs: list[str], page_objects: dict[str, dict], collection_id: str, key_id: str) -> set[str]:
    found = set()
    missing = [ref for ref in refs if ref not in page_objects]
    known = {o.stix_id: o.body for o in InboundObject.objects.filter(stix_id__in=missing, collection_id=collection_id)}
    for ref in refs:
        body = page_objects.get(ref) or known.get(ref)
        value = _sco_pseudonym(body, key_id) if body else None
        if value:
            found.add(value)
    return found


def _match(fresh: list[InboundObject], group: TrustGroup, result: PullResult) -> None:
    key = forum_key()
    by_id = {o.stix_id: o.body for o in fresh}
    # What each newest, unrevoked object says: pseudonyms (observed-data listing user-accounts) or a simhash.
    pseudonyms_of: dict[str, set[str]] = {}
    simhash_of: dict[str, str] = {}
    units: dict[str, InboundObject] = {}
    for obj in fresh:
        newest = _newest(obj.stix_id, group.collection_id)
        if obj.revoked or newest is None or newest.pk != obj.pk:
            continue
        if obj.stix_type == "observed-data":
            refs = [r for r in obj.body.get("object_refs") or []
                    if isinstance(r, str) and r.startswith("user-account--")]
            found = _sco_pseudonyms(refs, by_id, group.collection_id, key.id)
            if found:
                pseudonyms_of[obj.stix_id], units[obj.stix_id] = found, obj
            # A newer version without an account's pseudonym withdraws that account's match.
            _withdraw_missing(obj, found, key.id, result)
        elif (simhash := inbound_simhash(obj.body)) is not None:
            simhash_of[obj.stix_id], units[obj.stix_id] = simhash, obj
    accounts_by_pseudonym = pseudonym_matches(set().union(*pseudonyms_of.values()) if pseudonyms_of else set(),
                                              key_id=key.id)
    by_simhash = fingerprint_matches(set(simhash_of.values()))
    wanted: list[tuple[InboundObject, int, str, int | None]] = []
    for stix_id, found in pseudonyms_of.items():
        for value in sorted(found):
            if value in accounts_by_pseudonym:
                wanted.append((units[stix_id], accounts_by_pseudonym[value], InboundMatch.Kind.PSEUDONYM, None))
    for stix_id, simhash in simhash_of.items():
        for account_id, distance in by_simhash.get(simhash, []):
            wanted.append((units[stix_id], account_id, InboundMatch.Kind.FINGERPRINT, distance))
    if wanted:
        _matches_record(wanted, group, result)


def _matches_record(wanted, group: TrustGroup, result: PullResult) -> None:
    already = set(InboundMatch.objects.filter(stix_id__in={w[0].stix_id for w in wanted})
                  .values_list("stix_id", "account_id"))
    accounts = {a.pk: a for a in Account.objects.filter(pk__in={w[1] for w in wanted})}
    detector = forum_detector()
    now = timezone.now()
    matches, items = [], []
    for inbound, account_id, kind, distance in wanted:
        if (inbound.stix_id, account_id) in already:
            continue
        already.add((inbound.stix_id, account_id))
        external_id = f"{inbound.stix_id}/{account_id}"
        matches.append(InboundMatch(stix_id=inbound.stix_id, inbound=inbound, collection_id=group.collection_id,
                                    account_id=account_id, kind=kind, distance=distance,
                                    flag_external_id=external_id, matched_at=now))
        items.append((len(items), json.dumps(_flag_of(inbound, accounts[account_id], kind, distance, external_id,
                                                      now)).encode()))
    if not matches:
        return
    InboundMatch.objects.bulk_create(matches)
    ingested = flags_ingest(items=items, detector=detector, actor=SYSTEM)
    if ingested.rejected:  # our own flags: a rejection is a defect, never silently dropped
        raise InboundError("flags", f"the forum detector's flags were rejected: {ingested.rejected}")
    result.matches += len(matches)
    result.flags_created += ingested.created
    for match in matches:
        record(actor=SYSTEM, action=AuditAction.FORUM_INBOUND_MATCHED, target=match,
               data={"stix_id": match.stix_id, "collection_id": match.collection_id, "kind": match.kind,
                     "account_id": match.account_id, "distance": match.distance,
                     "flag_external_id": match.flag_external_id})


def _flag_of(inbound: InboundObject, account: Account, kind: str, distance: int | None, external_id: str, now) -> dict:
    body = inbound.body
    start = body.get("first_observed") or body.get("valid_from") or body.get("created") or now.isoformat()
    end = body.get("last_observed") or body.get("modified") or start
    if end < start:
        start, end = end, start
    evidence = {"forum": {"source_object_id": inbound.stix_id, "source_version": inbound.modified,
                          "collection_id": inbound.collection_id, "source_identity": inbound.source_identity,
                          "tlp": inbound.tlp, "match": kind}}
    if kind == InboundMatch.Kind.FINGERPRINT:
        evidence["forum"]["distance"] = distance
        # The fingerprint as flag evidence (reviewers see it; a share may carry it on — unless the peer's TLP
        # forbids re-sharing: content.gather_evidence leaves such flags out).
        evidence["template_simhash64"] = inbound_simhash(body)
    return {"external_id": external_id, "detector": FORUM_DETECTOR, "detector_version": "1",
            "account_id": account.external_id, "signal": "templated_prompts" if kind == InboundMatch.Kind.FINGERPRINT
            else "account_cluster", "score": 0.5, "observed_from": start, "observed_to": end, "evidence": evidence}


def forum_detector() -> Detector:
    return detector_ensure(actor=SYSTEM, slug=FORUM_DETECTOR, name="Forum intelligence",
                           owner_team="Sharing officers",
                           description="Matches of other labs' Forum intelligence against our accounts and flag "
                                       "evidence; each match is reviewed by a person, never enforced automatically.")


# ── revocation by the peer ────────────────────────────────────────────────────────────────────────────────────

def _revocations(fresh: list[InboundObject], result: PullResult) -> None:
    for obj in fresh:
        if obj.revoked:
            matches = list(InboundMatch.objects.select_for_update()
                           .filter(stix_id=obj.stix_id, collection_id=obj.collection_id, withdrawn_at__isnull=True))
            _withdraw(matches, obj, reason=f"{SOURCE_WITHDRAWN}: the peer revoked {obj.stix_id}", result=result)


def _withdraw_missing(obj: InboundObject, still: set[str], key_id: str, result: PullResult) -> None:
    live = list(InboundMatch.objects.select_for_update().filter(
        stix_id=obj.stix_id, collection_id=obj.collection_id, kind=InboundMatch.Kind.PSEUDONYM,
        withdrawn_at__isnull=True))
    if not live:
        return
    keep = set(AccountPseudonym.objects.filter(key_id=key_id, pseudonym__in=sorted(still))
               .values_list("account_id", flat=True))
    gone = [m for m in live if m.account_id not in keep]
    _withdraw(gone, obj, reason=f"{SOURCE_WITHDRAWN}: the peer's new version of {obj.stix_id} no longer lists "
                                "the account", result=result)


def _withdraw(matches: list[InboundMatch], obj: InboundObject, *, reason: str, result: PullResult) -> None:
    if not matches:
        return
    now = timezone.now()
    for match in matches:
        match.withdrawn_at, match.withdrawal_reason = now, reason[:500]
        match.save(update_fields=["withdrawn_at", "withdrawal_reason"])
    result.revoked += len(matches)
    detector = Detector.objects.get(slug=FORUM_DETECTOR)
    # Locked as grouping locks a pending flag (FOR NO KEY UPDATE): a grouper holding one finishes first (the flag
    # then has its case, handled below); one that comes later skips it, then finds it set aside.
    flags = list(flags_by_external_id(detector.pk, [m.flag_external_id for m in matches])
                 .select_for_update(no_key=True).order_by("pk"))
    kept_out = _keep_from_grouping([f for f in flags if f.case_id is None], reason=reason)
    closed, rereviews = [], []
    for case_id in sorted({f.case_id for f in flags if f.case_id}):
        outcome = _case_after_withdrawal(Case.objects.select_for_update(no_key=True).get(pk=case_id), obj)
        (closed if outcome == "closed" else rereviews if outcome == "rereview" else []).append(case_id)
    record(actor=SYSTEM, action=AuditAction.FORUM_INBOUND_REVOKED, target=Target("stix_object", obj.stix_id),
           data={"collection_id": obj.collection_id, "version": obj.modified, "reason": reason,
                 "withdrawn_flags": sorted(m.flag_external_id for m in matches),
                 "accounts": sorted(m.account_id for m in matches), "cases_closed": closed,
                 "cases_returned_to_senior": rereviews, "flags_kept_from_grouping": kept_out})


def _keep_from_grouping(flags: list[Flag], *, reason: str) -> list[int]:
    """A withdrawn forum flag not grouped yet never opens a case: it is set aside (``FlagSetAside``, which grouping
    leaves alone and the Detectors page lists with its reason), so no reviewer is sent to intelligence the peer
    has retracted. The caller holds the flags locked and audits this in its ``forum.inbound_revoked`` event."""
    from flags.services import flags_set_aside

    return flags_set_aside(flags=flags, reason=f"{reason} (before it was grouped into a case)")


def withdrawn_flag_ids(flag_ids: list[int]) -> set[int]:
    """Which of these flags came from Forum intelligence the peer has since withdrawn."""
    forum = list(Flag.objects.filter(pk__in=flag_ids, detector__slug=FORUM_DETECTOR).values_list("pk", "external_id"))
    gone = set(InboundMatch.objects.filter(flag_external_id__in=[e for _, e in forum], withdrawn_at__isnull=False)
               .values_list("flag_external_id", flat=True))
    return {pk for pk, external_id in forum if external_id in gone}


def _case_after_withdrawal(case: Case, obj: InboundObject) -> str:
    flag_ids = list(Flag.objects.filter(case=case).values_list("pk", flat=True))
    only_withdrawn = set(flag_ids) == withdrawn_flag_ids(flag_ids)
    reason = f"{SOURCE_WITHDRAWN}: {obj.stix_id} revoked by the peer"
    if case.state in (Case.State.NEW, Case.State.IN_REVIEW) and only_withdrawn:
        if case.state == Case.State.IN_REVIEW:  # the claim ends; the case was never decided
            case.assignee, case.claimed_at, case.lease_expires_at = None, None, None
            case = case_transition(case=case, to=Case.State.NEW, actor=SYSTEM, reason=reason, locked=True,
                                   fields=("assignee", "claimed_at", "lease_expires_at"))
        case_transition(case=case, to=Case.State.CLOSED, actor=SYSTEM, reason=reason, locked=True)
        return "closed"
    if case.state in (Case.State.AWAITING_APPROVAL, Case.State.DECIDED, Case.State.CLOSED):
        decision = Decision.objects.filter(case=case).order_by("-id").first()
        if decision is None:
            return ""
        InboundReReview.objects.get_or_create(
            case=case, stix_id=obj.stix_id,
            defaults={"decision": decision, "reason": reason[:500], "opened_at": timezone.now()})
        return "rereview"
    return ""


def rereviews_open():
    """Decided cases that relied on withdrawn intelligence, for a senior reviewer (oldest first)."""
    return InboundReReview.objects.filter(state=InboundReReview.State.OPEN).select_related("case", "decision")


@transaction.atomic
def rereview_done(*, senior, rereview: InboundReReview, note: str) -> InboundReReview:
    """A senior reviewer has looked at the decision again (what they decided goes through cases' own services)."""
    if not senior.has_perm("cases.approve_decision"):
        raise PermissionDenied("only a senior reviewer closes a re-review")
    if not note.strip() or len(note) > 2_000:
        raise InboundError("note", "say what you found, in 1 to 2,000 characters")
    rereview = InboundReReview.objects.select_for_update().get(pk=rereview.pk)
    if rereview.state != InboundReReview.State.OPEN:
        raise InboundError("rereview", "this re-review is already done")
    rereview.state, rereview.resolved_by, rereview.resolved_at = InboundReReview.State.DONE, senior, timezone.now()
    rereview.save(update_fields=["state", "resolved_by", "resolved_at"])
    record(actor=senior, action=AuditAction.FORUM_INBOUND_REVOKED, target=rereview,
           data={"case_id": rereview.case_id, "stix_id": rereview.stix_id, "rereview": "done", "note": note})
    return rereview


# ── feedback to the peer ──────────────────────────────────────────────────────────────────────────────────────

class Verdict:
    CONFIRMED = "confirmed"
    FALSE_POSITIVE_RESEARCHER = "false_positive_researcher"
    CHOICES = {CONFIRMED: ("agree", "confirmed"),
               FALSE_POSITIVE_RESEARCHER: ("strongly-disagree", "false positive: a researcher")}


@transaction.atomic
def feedback_publish(*, officer, inbound: InboundObject, verdict: str) -> ForumPush:
    """Tell the peer what its object was worth here, as a STIX ``opinion`` with counts only (how many local
    accounts it matched) — never a local account name or id — through the outbox like every push."""
    if not officer.has_perm("forum.approve_share"):
        raise PermissionDenied("only a sharing officer publishes feedback to the Forum")
    if verdict not in Verdict.CHOICES:
        raise InboundError("verdict", f"must be one of {sorted(Verdict.CHOICES)}")
    group = trust_group(inbound.collection_id)
    opinion_value, label = Verdict.CHOICES[verdict]
    matched = InboundMatch.objects.filter(stix_id=inbound.stix_id, collection_id=inbound.collection_id).count()
    tlp = Tlp(inbound.tlp) if inbound.tlp else Tlp.AMBER_STRICT
    identity = json.loads(sharer_identity().serialize())
    marking = marking_definition(tlp)
    now = timezone.now().isoformat(timespec="milliseconds").replace("+00:00", "Z")
    opinion = {
        "type": "opinion", "spec_version": "2.1",
        "id": f"opinion--{uuid.uuid4()}", "created": now, "modified": now,
        "created_by_ref": identity["id"], "object_marking_refs": [marking["id"]],
        "opinion": opinion_value, "object_refs": [inbound.stix_id],
        "explanation": f"{label} ({matched} local account{'s' if matched != 1 else ''} matched)",
    }
    bundle = {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": [identity, marking, opinion]}
    from .services import forum_push_enqueue  # services imports content, which imports this module's rule

    push = forum_push_enqueue(purpose=ForumPush.Purpose.FEEDBACK, collection_id=group.collection_id, bundle=bundle,
                              entries=[LedgerEntry(object=o) for o in bundle["objects"]], actor=officer)
    record(actor=officer, action=AuditAction.FORUM_FEEDBACK_PUBLISHED, target=push,
           data={"stix_id": inbound.stix_id, "verdict": verdict, "matched_accounts": matched,
                 "opinion_id": opinion["id"], "tlp": tlp.value})
    return push


def pull_interval() -> timedelta:
    return timedelta(seconds=int(getattr(settings, "FORUM_PULL_INTERVAL_SECONDS", 300)))
