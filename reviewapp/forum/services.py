"""Writes of Forum sharing: propose, narrow, include a researcher account, approve, reject, push (DESIGN.md
invariant 6). Every function locks what it changes and writes its audit event in the same transaction.

- Only what a human reviewed leaves: accounts with a recorded violation decision; researcher-programme
  accounts only by an officer's override with a reason.
- Four eyes: a sharing officer who is not the proposer approves the exact bytes they previewed (the SHA-256
  of the canonical bundle is stored); the push rebuilds the bundle and refuses, audited, if one byte differs.
- The push goes through the outbox (kinds ``forum_push`` and ``forum_status``, outbox_handlers.py): a hub
  that is down means delay, never loss; objects the hub already holds from an earlier attempt count as
  accepted, so nothing is sent twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC

import stix2
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from flags.models import Flag
from reviewapp.audit.actions import AuditAction
from reviewapp.audit.services import SYSTEM, Target, record
from reviewapp.cases.models import Account, Campaign, Case
from reviewapp.cases.workflow import InvalidTransition, move_check
from reviewapp.outbox.handlers import DeliveryError
from reviewapp.outbox.services import outbox_enqueue

from . import taxii
from .bundles import BuiltBundle, LedgerEntry, bundle_build, canonical_bytes, sha256_of
from .content import (
    ShareChoice,
    ShareError,
    accounts_with_violation,
    check_free_text,
    check_source,
    exclusion_for,
    gather_evidence,
    source_accounts,
)
from .models import (
    SHARE_TRANSITIONS,
    ForumPush,
    ShareAccount,
    ShareApproval,
    SharedObject,
    ShareItem,
    ShareItemKind,
    ShareProposal,
    ShareState,
    ShareVersion,
)
from .tlp import PROTECTIVE_TLPS, Tlp
from .trust_groups import UnknownCollection, trust_group

INTRUSION_SET_MAX = ShareVersion._meta.get_field("intrusion_set_name").max_length
REASON_MAX = 2_000


class InvalidShareTransition(InvalidTransition):
    noun = "share"


def _now_ms():
    """Now, cut to milliseconds: a version's time is its objects' STIX timestamps, stored exactly."""
    now = timezone.now().astimezone(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _move(proposal: ShareProposal, to: ShareState, fields: tuple[str, ...] = ()) -> None:
    move_check(SHARE_TRANSITIONS, proposal, to, InvalidShareTransition)
    proposal.state = to
    proposal.save(update_fields=["state", *fields])


def _reason(field: str, text: str, *, required: bool = True) -> str:
    text = (text or "").strip()
    if required and not text:
        raise ShareError(field, "give a reason")
    if len(text) > REASON_MAX:
        raise ShareError(field, f"is {len(text):,} characters; the limit is {REASON_MAX:,}")
    return text


def _check_choice(choice: ShareChoice, *, tlp: str, included: list[Account], scope: list[Account], cutoff,
                  intrusion_set_name: str) -> None:
    """The minimisation rules, enforced here whatever the form allowed."""
    from django.conf import settings

    if not choice.items():
        raise ShareError("items", "choose at least one item to share")
    try:
        tlp = Tlp(tlp)
    except ValueError:
        raise ShareError("tlp", f"{tlp!r} is not a TLP 2.0 level") from None
    if choice.carries_identifying_items and tlp not in PROTECTIVE_TLPS:
        raise ShareError("tlp", "a share with pseudonyms or prompt excerpts is marked TLP:AMBER, TLP:AMBER+STRICT "
                                "or TLP:RED")
    if not included:
        raise ShareError("source", "no account in it has a recorded violation decision (and is not a "
                                   "researcher-programme account)")
    k = settings.FORUM_MIN_CLUSTER_SIZE
    if choice.account_pseudonyms and len(included) < k:
        raise ShareError("account_pseudonyms", f"account pseudonyms leave only for a cluster of at least {k} accounts; "
                                               f"this share has {len(included)}")
    if len(intrusion_set_name) > INTRUSION_SET_MAX:
        raise ShareError("intrusion_set_name", f"is {len(intrusion_set_name)} characters; the limit is "
                                               f"{INTRUSION_SET_MAX}")
    check_free_text("intrusion_set_name", intrusion_set_name, scope=scope)
    if choice.fingerprints or choice.excerpts:
        evidence = gather_evidence(accounts=included, scope=scope, cutoff=cutoff)
        unknown = sorted(choice.fingerprints - set(evidence.fingerprints))
        if unknown:
            raise ShareError("fingerprints", f"not in the included accounts' evidence: {', '.join(unknown)}")
        missing = sorted(f"{f}:{i}" for f, i in choice.excerpts if f"{f}:{i}" not in evidence.excerpts)
        if missing:
            raise ShareError("excerpts", f"not in the included accounts' evidence: {', '.join(missing)}")


def _version_create(proposal: ShareProposal, *, number: int, created_by, collection_id: str, tlp: str,
                    intrusion_set_name: str, change_note: str, choice: ShareChoice,
                    accounts: list[tuple[Account, str, str, object]]) -> tuple[ShareVersion, BuiltBundle]:
    """Write one version (items and frozen accounts), then build its bundle for the hash and the summary."""
    try:
        trust_group(collection_id)
    except UnknownCollection as exc:
        raise ShareError("collection_id", str(exc)) from None
    created_at = _now_ms()
    scope = [account for account, *_ in accounts]
    included = [account for account, excluded, *_ in accounts if not excluded]
    intrusion_set_name = (intrusion_set_name or "").strip()
    _check_choice(choice, tlp=tlp, included=included, scope=scope, cutoff=created_at,
                  intrusion_set_name=intrusion_set_name)
    version = ShareVersion.objects.create(
        proposal=proposal, number=number, created_by=created_by, created_at=created_at, collection_id=collection_id,
        tlp=Tlp(tlp), intrusion_set_name=intrusion_set_name, change_note=change_note, bundle_sha256="")
    ShareItem.objects.bulk_create([
        ShareItem(version=version, kind=kind, key=key,
                  flag_id=int(key.split(":")[0]) if kind == ShareItemKind.EXCERPT else None,
                  excerpt_index=int(key.split(":")[1]) if kind == ShareItemKind.EXCERPT else None)
        for kind, key in choice.items()])
    ShareAccount.objects.bulk_create([
        ShareAccount(version=version, account=account, excluded=excluded, override_reason=reason, override_by=by)
        for account, excluded, reason, by in accounts])
    built = bundle_build(version)
    version.bundle_sha256, version.summary = built.sha256, built.summary
    version.save(update_fields=["bundle_sha256", "summary"])
    return version, built


def _audit_version(version: ShareVersion) -> dict:
    return {"version": version.number, "collection_id": version.collection_id, "tlp": version.tlp,
            "bundle_sha256": version.bundle_sha256, "summary": version.summary,
            "items": [[i.kind, i.key] for i in version.items.all()]}


@transaction.atomic
def share_propose(*, proposer, source: Case | Account | Campaign, choice: ShareChoice, collection_id: str,
                  tlp: str = Tlp.AMBER_STRICT, intrusion_set_name: str = "") -> ShareProposal:
    """A reviewer proposes a share of what was reviewed about a decided case, an account or a campaign.

    Only accounts with a recorded violation decision are included; researcher-programme accounts are listed as
    excluded (an officer may include one, with a reason: ``share_include_researcher``). Raises ``ShareError``
    naming the field, ``PermissionDenied`` for a role that does not propose."""
    if not proposer.has_perm("forum.propose_share"):
        raise PermissionDenied("Your role does not propose Forum shares.")
    check_source(source)
    kind, accounts, _campaign = source_accounts(source)
    violating = accounts_with_violation(a.pk for a in accounts)
    rows = [(a, exclusion_for(a, violating=violating, overridden=set()), "", None) for a in accounts]
    proposal = ShareProposal.objects.create(
        source=kind, case=source if kind == "case" else None, account=source if kind == "account" else None,
        campaign=source if kind == "campaign" else None, proposed_by=proposer, proposed_at=timezone.now())
    version, _ = _version_create(proposal, number=1, created_by=proposer, collection_id=collection_id, tlp=tlp,
                                 intrusion_set_name=intrusion_set_name, change_note="", choice=choice, accounts=rows)
    record(actor=proposer, action=AuditAction.SHARE_PROPOSED, target=proposal,
           data={"source": kind, "source_id": source.pk, **_audit_version(version),
                 "excluded": {row[0].pk: row[1] for row in rows if row[1]}})
    return proposal


def _officer_check(officer, proposal: ShareProposal, *, what: str) -> None:
    if not officer.has_perm("forum.approve_share"):
        raise PermissionDenied(f"Only a sharing officer may {what} a Forum share.")
    if officer.pk == proposal.proposed_by_id:
        raise PermissionDenied(f"You proposed share {proposal.pk}; another sharing officer must {what} it.")


def _locked_waiting(proposal: ShareProposal) -> ShareProposal:
    proposal = ShareProposal.objects.select_for_update().get(pk=proposal.pk)
    if proposal.state != ShareState.AWAITING_APPROVAL:
        raise InvalidShareTransition(proposal, ShareState.AWAITING_APPROVAL)
    return proposal


def current_version(proposal: ShareProposal) -> ShareVersion:
    return proposal.versions.get(number=proposal.current_version)


def _rows_of(version: ShareVersion) -> list[tuple[Account, str, str, object]]:
    return [(row.account, row.excluded, row.override_reason, row.override_by)
            for row in version.accounts.select_related("account", "override_by").order_by("account_id")]


def _next_version(proposal: ShareProposal, *, officer, choice: ShareChoice, rows, change_note: str,
                  tlp: str | None = None) -> ShareVersion:
    last = current_version(proposal)
    version, _ = _version_create(
        proposal, number=last.number + 1, created_by=officer, collection_id=last.collection_id,
        tlp=tlp or last.tlp, intrusion_set_name=last.intrusion_set_name, change_note=change_note, choice=choice,
        accounts=rows)
    proposal.current_version = version.number
    _move(proposal, ShareState.AWAITING_APPROVAL, fields=("current_version",))
    return version


@transaction.atomic
def share_narrow(*, officer, proposal: ShareProposal, choice: ShareChoice, reason: str,
                 tlp: str | None = None) -> ShareVersion:
    """A sharing officer removes items (or tightens the TLP): a new version, which needs its own preview."""
    proposal = _locked_waiting(proposal)
    _officer_check(officer, proposal, what="narrow")
    reason = _reason("reason", reason)
    last = current_version(proposal)
    before = ShareChoice.from_items(list(last.items.all()))
    if not choice.is_narrowing_of(before):
        raise ShareError("items", "narrowing only removes items; propose a new share to add any")
    order = [Tlp.CLEAR, Tlp.GREEN, Tlp.AMBER, Tlp.AMBER_STRICT, Tlp.RED]
    if tlp and order.index(Tlp(tlp)) < order.index(Tlp(last.tlp)):
        raise ShareError("tlp", f"narrowing keeps {Tlp(last.tlp).label} or a stricter level")
    version = _next_version(proposal, officer=officer, choice=choice, rows=_rows_of(last), change_note=reason, tlp=tlp)
    record(actor=officer, action=AuditAction.SHARE_NARROWED, target=proposal,
           data={"reason": reason, "from_version": last.number, **_audit_version(version)})
    return version


@transaction.atomic
def share_include_researcher(*, officer, proposal: ShareProposal, account: Account, reason: str) -> ShareVersion:
    """The approving officer includes one researcher-programme account, with a reason (audited): a new version."""
    proposal = _locked_waiting(proposal)
    _officer_check(officer, proposal, what="change")
    reason = _reason("reason", reason)
    last = current_version(proposal)
    rows = _rows_of(last)
    target = next((row for row in rows if row[0].pk == account.pk), None)
    if target is None:
        raise ShareError("account", f"account {account.pk} is not part of share {proposal.pk}")
    if target[1] != ShareAccount.Exclusion.RESEARCHER:
        raise ShareError("account", f"account {account.pk} is not excluded as a researcher-programme account")
    rows = [(a, "" if a.pk == account.pk else ex, reason if a.pk == account.pk else r, officer if a.pk == account.pk
             else by) for a, ex, r, by in rows]
    version = _next_version(proposal, officer=officer, choice=ShareChoice.from_items(list(last.items.all())),
                            rows=rows, change_note=f"Researcher-programme account included: {reason}")
    record(actor=officer, action=AuditAction.SHARE_RESEARCHER_INCLUDED, target=proposal,
           data={"account_id": account.pk, "reason": reason, "from_version": last.number, **_audit_version(version)})
    return version


@transaction.atomic
def share_reject(*, officer, proposal: ShareProposal, reason: str) -> ShareProposal:
    proposal = _locked_waiting(proposal)
    _officer_check(officer, proposal, what="reject")
    proposal.rejection_reason = _reason("reason", reason, required=True)
    proposal.decided_by, proposal.decided_at = officer, timezone.now()
    _move(proposal, ShareState.REJECTED, fields=("rejection_reason", "decided_by", "decided_at"))
    record(actor=officer, action=AuditAction.SHARE_REJECTED, target=proposal,
           data={"reason": proposal.rejection_reason, "version": proposal.current_version})
    return proposal


@transaction.atomic
def share_approve(*, officer, proposal: ShareProposal, version_number: int, bundle_sha256: str) -> ShareApproval:
    """A sharing officer who is not the proposer approves the version they previewed, by its hash.

    The bundle is rebuilt now; if it is not the one previewed (``bundle_sha256``), nothing is approved. The push
    (a ``ForumPush`` and its outbox message) is written in the same transaction."""
    proposal = _locked_waiting(proposal)
    _officer_check(officer, proposal, what="approve")
    if version_number != proposal.current_version:
        raise ShareError("version", f"version {version_number} is not the current one (v{proposal.current_version}); "
                                    "preview the current version")
    version = current_version(proposal)
    built = bundle_build(version)
    if built.sha256 != bundle_sha256:
        raise ShareError("bundle_sha256", "the bundle is no longer the one you previewed (its hash is now "
                                          f"{built.sha256[:12]}…); preview it again")
    now = timezone.now()
    approval = ShareApproval.objects.create(proposal=proposal, version=version, approved_by=officer, approved_at=now,
                                            bundle_sha256=built.sha256)
    proposal.decided_by, proposal.decided_at = officer, now
    _move(proposal, ShareState.APPROVED, fields=("decided_by", "decided_at"))
    push = ForumPush.objects.create(purpose=ForumPush.Purpose.SHARE, proposal=proposal, version=version,
                                    collection_id=version.collection_id, bundle_sha256=built.sha256, created_at=now)
    record(actor=officer, action=AuditAction.SHARE_APPROVED, target=proposal,
           data={"version": version.number, "bundle_sha256": built.sha256, "push_id": push.pk,
                 "collection_id": version.collection_id, "summary": built.summary})
    _enqueue_push(push)
    return approval


def _enqueue_push(push: ForumPush) -> None:
    outbox_enqueue(kind="forum_push", payload={"push_id": push.pk}, idempotency_key=f"forum-push-{push.pk}",
                   target=push)


@transaction.atomic
def forum_push_enqueue(*, purpose: str, collection_id: str, bundle: dict, entries: Iterable[LedgerEntry],
                       actor, proposal: ShareProposal | None = None, delete_ids: Iterable[str] = ()) -> ForumPush:
    """Queue a bundle built once by its service (a withdrawal's revoked versions, feedback to a peer) for the
    same delivery, status and ledger as a share. The bundle must parse as STIX 2.1 without custom content.

    The caller records its own audit event (``share.withdrawn``, ``forum.feedback_published``) in the same
    transaction, naming the push; ``actor`` is that event's actor. ``delete_ids``: user-account SCOs to delete
    from the collection once the hub has accepted the bundle (a withdrawal's; ``forum_push_delete_scos``)."""
    if purpose == ForumPush.Purpose.SHARE:
        raise ValueError("a share's push is made by share_approve")
    trust_group(collection_id)
    stix2.parse(bundle, allow_custom=False)
    body = canonical_bytes(bundle)
    now = timezone.now()
    push = ForumPush.objects.create(purpose=purpose, proposal=proposal, collection_id=collection_id,
                                    bundle=json.loads(body), bundle_sha256=sha256_of(body), created_at=now,
                                    delete_ids=sorted(set(delete_ids)))
    _ledger_write(push, list(entries))
    _enqueue_push(push)
    return push


def _ledger_write(push: ForumPush, entries: list[LedgerEntry]) -> None:
    # The sharer's identity and the TLP marking travel in every bundle with the same id and version: the ledger
    # keeps their first sending (ignore_conflicts), like the hub.
    now = timezone.now()
    SharedObject.objects.bulk_create([
        SharedObject(stix_id=e.object["id"], modified=e.object.get("modified", ""), stix_type=e.object["type"],
                     collection_id=push.collection_id, push=push, proposal=push.proposal,
                     account_ids=list(e.account_ids), pseudonyms=list(e.pseudonyms), key_id=e.key_id,
                     revoked=bool(e.object.get("revoked")), body=e.object, recorded_at=now)
        for e in entries], ignore_conflicts=True)


# ── delivery (outbox handlers call these inside the outbox's transaction, the message row locked) ──────────────

def _group_for(push: ForumPush):
    try:
        return trust_group(push.collection_id)
    except UnknownCollection as exc:
        raise DeliveryError(str(exc)) from None


def forum_push_deliver(*, push_id: int) -> ForumPush:
    """Send one push: rebuild (share) and check the approved hash, POST the exact bytes, record the status.

    Refusal (the rebuild differs) is final and audited, not retried. An unreachable hub raises
    ``DeliveryError``: the outbox retries later and nothing here is kept from the failed try."""
    push = ForumPush.objects.select_for_update().get(pk=push_id)
    if push.state in ForumPush.FINAL_STATES or push.status_id:
        return push  # done, or posted and being followed by forum_status
    group = _group_for(push)
    if push.purpose == ForumPush.Purpose.SHARE:
        built = bundle_build(push.version)
        if built.sha256 != push.bundle_sha256:
            return _refuse(push, built.sha256)
        body, entries = built.canonical, built.entries
    else:
        body, entries = canonical_bytes(push.bundle), []
        if sha256_of(body) != push.bundle_sha256:
            return _refuse(push, sha256_of(body))
    try:
        status = taxii.post_bundle(group, body)
    except taxii.HubUnavailable as exc:
        raise DeliveryError(str(exc)) from exc
    if entries:
        _ledger_write(push, entries)
    # What left, kept with its status (the register shows it; the status is matched against it).
    push.bundle = json.loads(body)
    push.status_id, push.sent_at = status.id, timezone.now()
    push.save(update_fields=["bundle", "status_id", "sent_at"])
    record(actor=SYSTEM, action=AuditAction.SHARE_PUSHED, target=push,
           data={"purpose": push.purpose, "proposal_id": push.proposal_id, "collection_id": push.collection_id,
                 "bundle_sha256": push.bundle_sha256, "status_id": status.id, "status": status.status})
    if status.complete:
        _complete(push, status, group)
    else:
        _record_counts(push, status)
        outbox_enqueue(kind="forum_status", payload={"push_id": push.pk},
                       idempotency_key=f"forum-status-{push.pk}-{status.id}", target=push)
    return push


def forum_push_follow_status(*, push_id: int) -> ForumPush:
    """Follow a posted push's TAXII status resource until the hub says it is complete (retried while pending)."""
    push = ForumPush.objects.select_for_update().get(pk=push_id)
    if push.state in ForumPush.FINAL_STATES:
        return push
    group = _group_for(push)
    try:
        status = taxii.get_status(group, push.status_id)
    except taxii.StatusUnknown:
        return _post_again(push)
    except taxii.HubUnavailable as exc:
        raise DeliveryError(str(exc)) from exc
    if not status.complete:
        total = status.success_count + status.failure_count + status.pending_count
        raise DeliveryError(f"the Forum hub is still processing: {status.pending_count} of {total} objects pending")
    _complete(push, status, group)
    return push


def _post_again(push: ForumPush) -> ForumPush:
    """The hub no longer knows the request it was following (restarted: medallion's memory backend keeps nothing,
    not even what it accepted). Post the same bundle again, under a message of its own: what the hub still holds
    is refused as already present and counts as accepted at completion, so nothing is held twice and nothing the
    hub lost stays lost."""
    lost = push.status_id
    push.status_id, push.last_error = "", f"The Forum hub no longer knows status {lost}; posted again."
    push.save(update_fields=["status_id", "last_error"])
    outbox_enqueue(kind="forum_push", payload={"push_id": push.pk}, idempotency_key=f"forum-push-{push.pk}-{lost}",
                   target=push)
    return push


def forum_push_delete_scos(*, push_id: int) -> ForumPush:
    """Delete from the collection the user-account SCOs a withdrawal left no object of ours listing (TAXII 2.1
    Delete An Object; STIX has no revoked SCO). Already gone counts as deleted, so a retry is harmless; an
    unreachable hub raises ``DeliveryError`` and the outbox retries. Audit ``share.objects_deleted``."""
    push = ForumPush.objects.select_for_update().get(pk=push_id)
    remaining = [i for i in push.delete_ids if i not in push.deleted_ids]
    if not remaining:
        return push
    group = _group_for(push)
    for stix_id in remaining:
        try:
            taxii.delete_object(group, stix_id)
        except taxii.HubUnavailable as exc:
            raise DeliveryError(str(exc)) from exc
    push.deleted_ids = sorted({*push.deleted_ids, *remaining})
    push.save(update_fields=["deleted_ids"])
    record(actor=SYSTEM, action=AuditAction.SHARE_OBJECTS_DELETED, target=push,
           data={"proposal_id": push.proposal_id, "collection_id": push.collection_id, "deleted": remaining})
    return push


def forum_pushes_reconcile() -> list[int]:
    """Beat (``forum.tasks.reconcile_pushes``): a push is never left behind because the outbox gave up on it.

    The outbox retries a message with back-off and gives up after OUTBOX_MAX_ATTEMPTS (a hub down for hours,
    or whose status resource stays "pending" for hours). A push still pending then has its latest message put
    back to pending with fresh attempts (``outbox_retry``, audited ``outbox.retried``): the send if the bundle
    was never posted, else the status follow-up — which only reads the status resource, so the bundle is never
    sent twice. Returns the pushes re-armed."""
    from reviewapp.outbox.models import OutboxMessage
    from reviewapp.outbox.services import outbox_retry

    rearmed = []
    for push in ForumPush.objects.filter(state=ForumPush.State.PENDING).only("pk", "status_id").order_by("pk"):
        kind = "forum_status" if push.status_id else "forum_push"
        latest = (OutboxMessage.objects.filter(kind=kind, target_type="forum.forumpush", target_id=str(push.pk))
                  .order_by("-id").first())
        if latest is not None and latest.state == OutboxMessage.State.FAILED:
            outbox_retry(message=latest, actor=SYSTEM)
            rearmed.append(push.pk)
    return rearmed


def _record_counts(push: ForumPush, status: taxii.HubStatus) -> None:
    push.success_count, push.failure_count, push.pending_count = (status.success_count, status.failure_count,
                                                                  status.pending_count)
    push.save(update_fields=["success_count", "failure_count", "pending_count"])


def _complete(push: ForumPush, status: taxii.HubStatus, group) -> None:
    """Final state from a complete status. An object the hub refused because it already holds that version (our
    own earlier attempt whose answer was lost, or the identity every bundle carries) counts as accepted."""
    sent = {(o["id"], o.get("modified", "")) for o in _objects_of(push)}
    accepted_ids = {s.get("id") for s in status.successes}
    if not status.successes and status.success_count and len(status.failures) == status.failure_count:
        # TAXII 2.1 makes the lists of details optional: a hub that counts its successes without listing them
        # accepted what was sent less the failures it lists.
        accepted_ids = {i for i, _ in sent} - {f.get("id") for f in status.failures}
    failures = []
    for failure in status.failures:
        stix_id, version = failure.get("id", ""), failure.get("version", "")
        modified = next((m for i, m in sent if i == stix_id), "")
        if stix_id and taxii_object_present(group, stix_id, modified):
            accepted_ids.add(stix_id)
        else:
            failures.append({"id": stix_id, "version": version, "message": failure.get("message", "")})
    total = len(sent)
    accepted = len({i for i, _ in sent} & accepted_ids)
    push.success_count, push.failure_count, push.pending_count = accepted, len(failures), 0
    push.failures = failures
    push.completed_at = timezone.now()
    push.state = (ForumPush.State.SENT if accepted == total and not failures
                  else ForumPush.State.FAILED if accepted == 0 else ForumPush.State.PARTIAL)
    push.save(update_fields=["success_count", "failure_count", "pending_count", "failures", "completed_at", "state"])
    SharedObject.objects.filter(push=push, stix_id__in=accepted_ids).update(accepted=True)
    record(actor=SYSTEM, action=AuditAction.SHARE_PUSH_COMPLETED, target=push,
           data={"state": push.state, "accepted": accepted, "failed": len(failures), "objects": total,
                 "status_id": status.id, "failures": failures[:20]})
    # The SCOs leave the hub only once no version of ours that lists them stands there: every observed-data of
    # this withdrawal (revoked, or narrowed without them) accepted.
    listing = {o["id"] for o in _objects_of(push) if o["type"] == "observed-data"}
    if push.delete_ids and listing <= accepted_ids:
        outbox_enqueue(kind="forum_delete", payload={"push_id": push.pk}, idempotency_key=f"forum-delete-{push.pk}",
                       target=push)


def taxii_object_present(group, stix_id: str, modified: str) -> bool:
    try:
        return taxii.object_present(group, stix_id, modified)
    except taxii.HubUnavailable as exc:
        raise DeliveryError(str(exc)) from exc


def _objects_of(push: ForumPush) -> list[dict]:
    return push.bundle["objects"]


def _refuse(push: ForumPush, rebuilt_sha256: str) -> ForumPush:
    push.state, push.refused_sha256, push.completed_at = ForumPush.State.REFUSED, rebuilt_sha256, timezone.now()
    push.last_error = ("Not sent: the bundle rebuilt for sending is not byte for byte the one approved "
                       f"(approved {push.bundle_sha256[:12]}…, now {rebuilt_sha256[:12]}…).")
    push.save(update_fields=["state", "refused_sha256", "completed_at", "last_error"])
    record(actor=SYSTEM, action=AuditAction.SHARE_PUSH_REFUSED, target=push,
           data={"proposal_id": push.proposal_id, "approved_sha256": push.bundle_sha256,
                 "rebuilt_sha256": rebuilt_sha256})
    return push


# ── reading raw evidence for a share is an evidence opening (DESIGN.md invariant 2) ─────────────────────────────

def excerpts_opened(*, user, flag_ids: Iterable[int], context: str) -> None:
    """Record ``evidence.opened`` on each case whose flags' excerpts ``user`` is shown (share candidates, the
    preview of a bundle that carries excerpts)."""
    cases = (Flag.objects.filter(pk__in=list(flag_ids), case__isnull=False).values_list("case_id", flat=True)
             .distinct())
    with transaction.atomic():
        for case_id in sorted(set(cases)):
            flags = sorted(Flag.objects.filter(pk__in=list(flag_ids), case_id=case_id).values_list("pk", flat=True))
            record(actor=user, action=AuditAction.EVIDENCE_OPENED, target=Target(type="cases.case", id=str(case_id)),
                   data={"flags": flags, "context": context})


# ── withdrawal when we were wrong (F2; DESIGN.md invariant 6) ──────────────────────────────────────────────────
#
# Only subtractive changes leave without a preview: a new version of an object we sent with ``revoked: true``,
# or a new version of the accounts' observed-data without some ``object_refs``. Nothing recomputed is sent
# (a recount would be content nobody approved, and old minus new would reveal the withdrawn account's share).
# Which objects go: those the share would not hold had the withdrawn accounts never been in it, or would hold
# with other content (time bounds aside: a campaign's first/last seen, an indicator's valid_from); then every
# object that points at one that went. A user-account (an SCO) has no versions in STIX and cannot be revoked:
# it leaves the observed-data's object_refs, and the observed-data is revoked when fewer than
# FORUM_MIN_CLUSTER_SIZE accounts would remain (account lists leave only for clusters of k).

_TIME_BOUNDS = frozenset({"created", "modified", "first_seen", "last_seen", "valid_from", "first_observed",
                          "last_observed"})
_REF_KEYS = ("source_ref", "target_ref", "sighting_of_ref", "object_refs", "observed_data_refs",
             "where_sighted_refs")


def _after(previous: str) -> str:
    """A STIX timestamp (ms) strictly later than ``previous``: a new version must sort after the old one."""
    from datetime import datetime, timedelta

    from .bundles import stix_time

    now = _now_ms()
    if previous:
        before = datetime.fromisoformat(previous.replace("Z", "+00:00"))
        if now <= before:
            now = before + timedelta(milliseconds=1)
    return stix_time(now)


def _live_objects(proposal: ShareProposal) -> dict[str, SharedObject]:
    """The newest version we sent of each object of the share (not our identity or the TLP definitions, which
    every share carries and no withdrawal may revoke)."""
    from .bundles import sharer_identity

    sharer = sharer_identity().id
    newest: dict[str, SharedObject] = {}
    for row in SharedObject.objects.filter(proposal=proposal).exclude(stix_type="marking-definition") \
            .exclude(stix_id=sharer).order_by("stix_id", "modified", "id"):
        newest[row.stix_id] = row
    return newest


def _refs(body: dict) -> set[str]:
    found: set[str] = set()
    for key in _REF_KEYS:
        value = body.get(key)
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, list):
            found.update(value)
    return found


def _content(body: dict) -> dict:
    return {k: v for k, v in body.items() if k not in _TIME_BOUNDS}


def _plan(proposal: ShareProposal, *, without: frozenset[int] | None) -> tuple[list[SharedObject], list[tuple]]:
    """(revoke, narrow): the live objects to revoke, and (observed-data row, refs kept, accounts kept, pseudonyms
    kept) to send again without the withdrawn accounts. ``without`` None: the whole share."""
    from django.conf import settings

    live = {i: row for i, row in _live_objects(proposal).items() if not row.revoked}
    revoke: dict[str, SharedObject] = {}
    narrow: list[tuple] = []
    if without is None:
        revoke = {i: row for i, row in live.items() if row.stix_type != "user-account"}
    else:
        approval = ShareApproval.objects.filter(proposal=proposal).select_related("version").first()
        rebuilt = ({o["id"]: o for o in bundle_build(approval.version, without=without).bundle["objects"]}
                   if approval else {})
        # The user-accounts the share's account lists name, from the collection's ledger: an SCO's id comes from
        # its pseudonym, so one sent by an earlier share is the same object (its ledger row is that share's).
        scos = _listed_scos(live.values())
        gone_accounts = {i for i, row in scos.items() if set(row.account_ids) <= without}
        for stix_id, row in live.items():
            if row.stix_type == "user-account" or not set(row.account_ids) & without:
                continue
            if row.stix_type == "observed-data":
                refs = [r for r in row.body.get("object_refs", []) if r not in gone_accounts]
                if len(refs) >= settings.FORUM_MIN_CLUSTER_SIZE:
                    if len(refs) < len(row.body.get("object_refs", [])):
                        kept = [scos[r] for r in refs if r in scos]
                        narrow.append((row, refs, sorted({a for k in kept for a in k.account_ids}),
                                       sorted({p for k in kept for p in k.pseudonyms})))
                    continue
                revoke[stix_id] = row
            elif stix_id not in rebuilt or _content(rebuilt[stix_id]) != _content(row.body):
                revoke[stix_id] = row
    # Whatever points at an object that went goes too (a relationship, a sighting, a note), until nothing does.
    changed = True
    while changed:
        changed = False
        for stix_id, row in live.items():
            if stix_id not in revoke and row.stix_type != "user-account" and _refs(row.body) & set(revoke):
                revoke[stix_id] = row
                changed = True
    narrow = [n for n in narrow if n[0].stix_id not in revoke]
    return sorted(revoke.values(), key=lambda r: r.stix_id), narrow


def _listed_scos(rows) -> dict[str, SharedObject]:
    """The ledger rows of the user-account SCOs the observed-data among ``rows`` list (any share's sending)."""
    rows = [r for r in rows if r.stix_type == "observed-data"]
    refs = {ref for r in rows for ref in r.body.get("object_refs", [])}
    if not refs:
        return {}
    return {r.stix_id: r for r in SharedObject.objects.filter(
        collection_id=rows[0].collection_id, stix_type="user-account", stix_id__in=sorted(refs))}


def _scos_to_delete(revoke: list[SharedObject], narrow: list[tuple]) -> list[str]:
    """The user-account SCOs no observed-data of ours will list once this withdrawal is accepted: listed by one it
    revokes or dropped from one it narrows, and not listed by another of ours that stands in the collection (an
    SCO's id comes from its pseudonym: another share may list the same one)."""
    from django.db.models import Q

    dropped = {r for row in revoke if row.stix_type == "observed-data" for r in row.body.get("object_refs", [])}
    dropped |= {r for row, refs, *_ in narrow for r in set(row.body.get("object_refs", [])) - set(refs)}
    dropped = {r for r in dropped if r.startswith("user-account--")}
    if not dropped:
        return []
    collection_id = (revoke or [n[0] for n in narrow])[0].collection_id
    going = {row.stix_id for row in revoke} | {row.stix_id for row, *_ in narrow}
    still = {r for _, refs, *_ in narrow for r in refs}
    listing = Q()
    for ref in dropped:
        listing |= Q(body__object_refs__contains=[ref])
    others = set(SharedObject.objects.filter(listing, collection_id=collection_id, stix_type="observed-data")
                 .exclude(stix_id__in=going).values_list("stix_id", flat=True))
    for stix_id in sorted(others):
        # What counts is that observed-data's newest version (a later narrowing may have dropped the SCO).
        last = SharedObject.objects.filter(stix_id=stix_id, collection_id=collection_id).order_by("-modified").first()
        if not last.revoked:
            still |= set(last.body.get("object_refs", []))
    return sorted(dropped - still)


def _withdrawal_bundle(proposal: ShareProposal, revoke: list[SharedObject],
                       narrow: list[tuple]) -> tuple[dict, list[LedgerEntry]]:
    import uuid as uuid_module

    from .bundles import sharer_identity
    from .tlp import marking_definition, tlp_of

    entries: list[LedgerEntry] = []
    for row in revoke:
        body = {**row.body, "revoked": True, "modified": _after(row.body.get("modified", ""))}
        entries.append(LedgerEntry(object=body, account_ids=tuple(row.account_ids), pseudonyms=tuple(row.pseudonyms),
                                   key_id=row.key_id))
    for row, refs, account_ids, kept_pseudonyms in narrow:
        body = {**row.body, "object_refs": refs, "modified": _after(row.body.get("modified", ""))}
        entries.append(LedgerEntry(object=body, account_ids=tuple(account_ids), pseudonyms=tuple(kept_pseudonyms),
                                   key_id=row.key_id))
    identity = json.loads(sharer_identity().serialize())
    levels = sorted({tlp_of(e.object.get("object_marking_refs")) for e in entries} - {None})
    markings = [marking_definition(level) for level in levels]
    objects = [identity, *markings, *(e.object for e in entries)]
    bundle = {"type": "bundle", "id": f"bundle--{uuid_module.uuid4()}", "objects": objects}
    return bundle, [LedgerEntry(object=identity), *(LedgerEntry(object=m) for m in markings), *entries]


def _withdraw(proposal: ShareProposal, *, without: frozenset[int] | None, actor) -> tuple[ForumPush | None, list,
                                                                                         list]:
    revoke, narrow = _plan(proposal, without=without)
    if not revoke and not narrow:
        return None, [], []
    bundle, entries = _withdrawal_bundle(proposal, revoke, narrow)
    collection_id = (revoke or [n[0] for n in narrow])[0].collection_id
    push = forum_push_enqueue(purpose=ForumPush.Purpose.WITHDRAWAL, collection_id=collection_id, bundle=bundle,
                              entries=entries, actor=actor, proposal=proposal,
                              delete_ids=_scos_to_delete(revoke, narrow))
    return push, [r.stix_id for r in revoke], [n[0].stix_id for n in narrow]


def _stop_unsent(proposal: ShareProposal, *, why: str) -> list[int]:
    """A share push not posted yet never leaves once what it carries is withdrawn (the hub was down, or the
    outbox had not reached it yet). Locking the row waits for a delivery in progress: once that commits, the push
    is posted (``status_id`` set: PostgreSQL re-checks the filter on the row it waited for, so it is not stopped
    here) and its ledger is visible to the withdrawal that follows in this transaction."""
    unsent = list(ForumPush.objects.select_for_update().filter(
        proposal=proposal, purpose=ForumPush.Purpose.SHARE, state=ForumPush.State.PENDING, status_id=""))
    for push in unsent:
        push.state, push.completed_at, push.last_error = ForumPush.State.STOPPED, timezone.now(), why
        push.save(update_fields=["state", "completed_at", "last_error"])
    return [p.pk for p in unsent]


@transaction.atomic
def share_withdraw(*, officer, proposal: ShareProposal, reason: str) -> ShareProposal:
    """A sharing officer withdraws a whole share (approved, or still waiting: SHARE_TRANSITIONS), with a reason;
    no second person is needed, since withdrawing only takes away. Every object of it we sent gets a revoked new
    version, pushed like a share; a push not sent yet is stopped. Audit ``share.withdrawn``."""
    from .models import ShareWithdrawal

    if not officer.has_perm("forum.withdraw_share"):
        raise PermissionDenied("Only a sharing officer may withdraw a Forum share.")
    # NO KEY: a delivery in progress writes ledger rows that reference the proposal (a KEY SHARE lock) while it
    # holds the push this withdrawal waits for; FOR UPDATE here would deadlock with it.
    proposal = ShareProposal.objects.select_for_update(no_key=True).get(pk=proposal.pk)
    reason = _reason("reason", reason)
    move_check(SHARE_TRANSITIONS, proposal, ShareState.WITHDRAWN, InvalidShareTransition)
    cancelled = _stop_unsent(proposal, why="Not sent: the share was withdrawn before the Forum hub could be reached.")
    push, revoked, _ = _withdraw(proposal, without=None, actor=officer)
    now = timezone.now()
    proposal.withdrawn_at, proposal.withdrawn_by, proposal.withdrawal_reason = now, officer, reason
    _move(proposal, ShareState.WITHDRAWN, fields=("withdrawn_at", "withdrawn_by", "withdrawal_reason"))
    ShareWithdrawal.objects.create(proposal=proposal, push=push, reason=reason, withdrawn_by=officer,
                                   withdrawn_at=now, revoked_ids=revoked)
    record(actor=officer, action=AuditAction.SHARE_WITHDRAWN, target=proposal,
           data={"reason": reason, "push_id": push.pk if push else None, "revoked": revoked,
                 "unsent_pushes_stopped": cancelled})
    return proposal


@transaction.atomic
def shares_withdraw_for_account(*, account: Account, reason: str, actor=SYSTEM, decision=None,
                                appeal_id: int | None = None) -> list:
    """Withdraw, without waiting for anyone, every object we shared about ``account`` (its decision was overturned:
    receivers.py). Per share it was in: revoked new versions, or the accounts' observed-data again without its
    pseudonym; accounts withdrawn from that share before stay out. Audit ``share.objects_revoked`` per share.

    Whatever the order of this and a share's delivery, nothing about the account leaves unwithdrawn afterwards:
    the shares are found in the ledger (sent) and among the approved or waiting versions that include the
    account (not sent yet). A push not posted yet is stopped; one being posted is waited for (its row lock), then
    withdrawn from the ledger it wrote. A waiting proposal keeps the account out of its bundle from now on (the
    withdrawal row: ``bundles.included_accounts``), so its preview changes and its approval needs a new one."""
    from django.db.models import F, Q

    from .models import ShareWithdrawal

    sent = set(SharedObject.objects.filter(account_ids__contains=[account.pk]).values_list("proposal_id", flat=True))
    unsent = set(ShareAccount.objects.filter(account=account, excluded=ShareAccount.Exclusion.NONE).filter(
        Q(version__approval__isnull=False)
        | Q(version__proposal__state=ShareState.AWAITING_APPROVAL,
            version__number=F("version__proposal__current_version"))).values_list("version__proposal_id", flat=True))
    made = []
    # NO KEY, as in share_withdraw: a delivery in progress references the proposal from its ledger rows.
    locked = ShareProposal.objects.select_for_update(no_key=True).filter(pk__in=(sent | unsent) - {None})
    for proposal in locked.order_by("pk"):
        if (proposal.state in (ShareState.WITHDRAWN, ShareState.REJECTED)
                or proposal.withdrawals.filter(account=account).exists()):
            continue
        stopped = _stop_unsent(proposal, why=f"Not sent: {reason} Nothing about that account may leave, so this "
                                             "bundle is not sent; propose the share again without it.")
        before = set(proposal.withdrawals.exclude(account=None).values_list("account_id", flat=True))
        push, revoked, narrowed = _withdraw(proposal, without=frozenset(before | {account.pk}), actor=actor)
        withdrawal = ShareWithdrawal.objects.create(
            proposal=proposal, account=account, push=push, reason=reason, decision=decision, appeal_id=appeal_id,
            withdrawn_at=timezone.now(), revoked_ids=revoked, narrowed_ids=narrowed)
        record(actor=actor, action=AuditAction.SHARE_OBJECTS_REVOKED, target=proposal,
               data={"account_id": account.pk, "decision_id": decision.pk if decision else None,
                     "appeal_id": appeal_id, "reason": reason, "push_id": push.pk if push else None,
                     "revoked": revoked, "narrowed": narrowed, "unsent_pushes_stopped": stopped})
        made.append(withdrawal)
    return made
