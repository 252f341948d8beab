"""Writes of the appeals portal and appeal review. Each writes its audit event in its transaction.

DSA Art. 20: appeals are free, electronic, open for at least six months (the clause's window, default
180 days from the notice), decided by a qualified person who took no part in the decision, with reasons.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.services import Actor, record
from reviewapp.cases.holders import holder_actor, holder_link_issue
from reviewapp.cases.models import Account, Case, Decision, HolderLink
from reviewapp.cases.services.decisions import (
    PolicyViolation,
    decision_replace_on_appeal,
    decision_reverse_on_appeal,
)
from reviewapp.cases.workflow import transition_apply
from reviewapp.limits import ensure_within_limits
from reviewapp.outbox.services import outbox_enqueue
from reviewapp.policy.enforcement import Action

from .models import Appeal, AppealAttachment, AppealMessage
from .selectors import NOTIFIED_STATES, took_part
from .workflow import TRANSITIONS, InvalidAppealTransition

# What a holder may attach: type → (extensions, the file's first bytes).
ALLOWED_ATTACHMENTS = {
    "application/pdf": ((".pdf",), (b"%PDF-",)),
    "image/png": ((".png",), (b"\x89PNG\r\n\x1a\n",)),
    "image/jpeg": ((".jpg", ".jpeg"), (b"\xff\xd8\xff",)),
    "text/plain": ((".txt",), ()),
}


class AppealError(ValueError):
    """An appeal action that cannot be taken; the message is written for the person who tried."""


class AppealConflict(AppealError):
    """Refused because of the appeal's state (decided, assigned to someone else, already open): trying
    again with other input will not help. The API answers 409 to it, 400 to other AppealErrors."""


@dataclass(frozen=True)
class Upload:
    name: str
    content_type: str
    data: bytes


def _check_upload(upload: Upload) -> str:
    """The allowed content type of an upload, or AppealError naming what is wrong with it."""
    name = Path(upload.name).name
    if len(upload.data) > settings.APPEAL_ATTACHMENT_MAX_BYTES:
        raise AppealError(_("%(name)s is %(kb)d KB; each file may be at most %(mb)d MB") % {
            "name": name, "kb": len(upload.data) // 1024, "mb": settings.APPEAL_ATTACHMENT_MAX_BYTES // (1024 * 1024)})
    if not upload.data:
        raise AppealError(_("%(name)s is empty") % {"name": name})
    for content_type, (extensions, magic) in ALLOWED_ATTACHMENTS.items():
        if name.lower().endswith(extensions):
            if magic and not upload.data.startswith(magic):
                raise AppealError(_("%(name)s does not look like a %(ext)s file")
                                  % {"name": name, "ext": extensions[0]})
            if content_type == "text/plain":
                try:
                    upload.data.decode("utf-8")
                except UnicodeDecodeError:
                    raise AppealError(_("%(name)s is not plain UTF-8 text") % {"name": name}) from None
            return content_type
    raise AppealError(_("%(name)s: only PDF, PNG, JPEG and plain-text files can be attached") % {"name": name})


def _store(upload: Upload, content_type: str, appeal: Appeal) -> AppealAttachment:
    directory = Path(settings.APPEAL_ATTACHMENTS_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    stored_as = f"{appeal.pk}-{secrets.token_hex(16)}"
    (directory / stored_as).write_bytes(upload.data)
    return AppealAttachment.objects.create(
        appeal=appeal, name=Path(upload.name).name[:200], content_type=content_type, size=len(upload.data),
        sha256=hashlib.sha256(upload.data).hexdigest(), stored_as=stored_as)


def _email(*, to: str, subject: str, template: str, context: dict, key: str, target) -> None:
    if to:
        outbox_enqueue(kind="email", target=target, idempotency_key=key, payload={
            "to": [to], "subject": subject, "body": render_to_string(template, context)})


@transaction.atomic
def appeal_file(*, account: Account, decision: Decision, grounds: str, researcher_claim: bool = False,
                affiliation: str = "", uploads: list[Upload] = ()) -> Appeal:
    """File an appeal against one of the holder's own decisions, within its window, one open at a time."""
    # of=self: the statement is a nullable outer join, which PostgreSQL will not lock.
    decision = Decision.objects.select_for_update(of=("self",)).select_related("statement").get(pk=decision.pk)
    if decision.account_id != account.pk or decision.state not in NOTIFIED_STATES:
        raise AppealError(_("There is no such decision to appeal."))
    if decision.state == Decision.State.REVERSED:
        raise AppealError(_("This decision was already reversed; there is nothing left to appeal."))
    deadline = decision.statement.appeal_deadline
    if timezone.now() > deadline:
        raise AppealError(_("The appeal window for this decision closed on %(date)s.") % {
            "date": date_format(deadline, "j F Y")})
    if not grounds.strip():
        raise AppealError(_("Tell us why you think the decision is wrong."))
    ensure_within_limits(Appeal, error=AppealError, grounds=grounds.strip(), affiliation=affiliation.strip())
    if len(uploads) > settings.APPEAL_ATTACHMENT_MAX_FILES:
        raise AppealError(_("Attach at most %(n)d files.") % {"n": settings.APPEAL_ATTACHMENT_MAX_FILES})
    checked = [(upload, _check_upload(upload)) for upload in uploads]  # all good, or nothing is stored
    try:
        with transaction.atomic():
            appeal = Appeal.objects.create(decision=decision, account=account, grounds=grounds.strip(),
                                           researcher_claim=researcher_claim, affiliation=affiliation.strip(),
                                           deadline=deadline)
    except IntegrityError:
        raise AppealConflict("You already have an open appeal against this decision.") from None
    attachments = [_store(upload, content_type, appeal) for upload, content_type in checked]
    record(actor=holder_actor(account), action=AuditAction.APPEAL_FILED, target=appeal, data={
        "decision": decision.pk, "researcher_claim": researcher_claim,
        "attachments": [{"name": a.name, "sha256": a.sha256, "size": a.size} for a in attachments]})
    _email(to=account.contact_email, subject=f"We received your appeal no. {appeal.pk}",
           template="appeals/email_receipt.txt", context={"appeal": appeal}, key=f"appeal-receipt-{appeal.pk}",
           target=appeal)
    return appeal


@transaction.atomic
def appeal_transition(*, appeal: Appeal, to: str, actor, reason: str, fields: tuple[str, ...] = ()) -> Appeal:
    """Move an appeal along workflow.TRANSITIONS; anything else raises InvalidAppealTransition and changes
    nothing.

    The one home of an appeal's state change and its ``appeal.transitioned`` event. The caller holds the row
    lock (``select_for_update``) and passes that instance; its other changed ``fields`` are saved with the
    state.
    """
    return transition_apply(appeal, table=TRANSITIONS, error=InvalidAppealTransition, to=Appeal.State(to),
                            actor=actor, action=AuditAction.APPEAL_TRANSITIONED, reason=reason, fields=fields)


def _staff_can_handle(user, appeal: Appeal) -> None:
    if not user.has_perm("appeals.decide_appeal"):
        raise PermissionDenied("Only senior reviewers handle appeals.")
    if appeal.reviewer_id != user.pk:
        raise PermissionDenied(f"Claim appeal {appeal.pk} first.")


def ensure_can_claim_appeal(reviewer, appeal: Appeal) -> None:
    """A senior reviewer who took no part in the decision claims an open appeal nobody else holds.

    (A plain function, not in the ``@transaction.atomic`` body, so that ``make mutation`` reaches it.)
    """
    if not reviewer.has_perm("appeals.decide_appeal"):
        raise PermissionDenied("Only senior reviewers handle appeals.")
    if took_part(reviewer, appeal.decision):
        raise PermissionDenied("You took part in this decision; someone else must review the appeal.")
    if not appeal.is_open:
        raise AppealConflict(f"Appeal {appeal.pk} is already decided.")
    if appeal.reviewer_id not in (None, reviewer.pk):
        raise AppealConflict(f"Appeal {appeal.pk} is assigned to {appeal.reviewer}.")


@transaction.atomic
def appeal_claim(*, reviewer, appeal: Appeal) -> Appeal:
    """Assign an appeal to a senior reviewer who took no part in the decision (invariant 5)."""
    appeal = Appeal.objects.select_for_update().select_related("decision").get(pk=appeal.pk)
    ensure_can_claim_appeal(reviewer, appeal)
    appeal.reviewer, appeal.claimed_at = reviewer, timezone.now()
    if appeal.state == Appeal.State.FILED:
        appeal_transition(appeal=appeal, to=Appeal.State.IN_REVIEW, actor=reviewer, reason="claimed",
                          fields=("reviewer", "claimed_at"))
    else:  # claimed again by its own reviewer: no move
        appeal.save(update_fields=["reviewer", "claimed_at"])
    record(actor=reviewer, action=AuditAction.APPEAL_CLAIMED, target=appeal, data={"decision": appeal.decision_id})
    return appeal


@transaction.atomic
def appeal_message_add(*, appeal: Appeal, text: str, holder: Account | None = None, staff=None) -> AppealMessage:
    """A message on an appeal, from its holder or its reviewer; the other side is emailed."""
    # of=self: the reviewer is a nullable outer join, which PostgreSQL will not lock.
    appeal = Appeal.objects.select_for_update(of=("self",)).select_related("account", "reviewer").get(pk=appeal.pk)
    if not text.strip():
        raise AppealError("Write a message first.")
    ensure_within_limits(AppealMessage, error=AppealError, text=text.strip())
    if not appeal.is_open:
        raise AppealConflict("This appeal is decided; it takes no more messages.")
    if holder is not None:
        if holder.pk != appeal.account_id:
            raise AppealError("There is no such appeal.")
        message = AppealMessage.objects.create(appeal=appeal, author_type=AppealMessage.Author.HOLDER,
                                               text=text.strip())
        if appeal.state == Appeal.State.INFO_REQUESTED:
            appeal_transition(appeal=appeal, to=Appeal.State.IN_REVIEW, actor=holder_actor(holder),
                              reason="the holder replied")
        record(actor=holder_actor(holder), action=AuditAction.APPEAL_MESSAGE, target=appeal,
               data={"message": message.pk, "from": "holder"})
        if appeal.reviewer is not None:
            _email(to=appeal.reviewer.email, subject=f"Appeal {appeal.pk}: the holder replied",
                   template="appeals/email_staff_reply.txt", context={"appeal": appeal, "message": message},
                   key=f"appeal-message-{message.pk}", target=appeal)
        return message
    _staff_can_handle(staff, appeal)
    message = AppealMessage.objects.create(appeal=appeal, author_type=AppealMessage.Author.STAFF, author=staff,
                                           text=text.strip())
    if appeal.state != Appeal.State.INFO_REQUESTED:  # a second question while waiting: no move
        appeal_transition(appeal=appeal, to=Appeal.State.INFO_REQUESTED, actor=staff, reason="information requested")
    record(actor=staff, action=AuditAction.APPEAL_INFO_REQUESTED, target=appeal, data={"message": message.pk})
    link = holder_link_issue(account=appeal.account, purpose=HolderLink.Purpose.OUTCOME)
    _email(to=appeal.account.contact_email, subject=f"Your appeal no. {appeal.pk}: we need more information",
           template="appeals/email_holder_message.txt", context={"appeal": appeal, "message": message,
                                                                  "sign_in_url": link},
           key=f"appeal-message-{message.pk}", target=appeal)
    return message


def ensure_can_decide_appeal(reviewer, appeal: Appeal) -> None:
    """Only the appeal's own reviewer, who took no part in the decision (invariant 5), decides an open appeal.

    (A plain function, not in the ``@transaction.atomic`` body, so that ``make mutation`` reaches it.)
    """
    _staff_can_handle(reviewer, appeal)
    if took_part(reviewer, appeal.decision):  # re-checked: the claim could predate a later involvement
        raise PermissionDenied("You took part in this decision; someone else must decide the appeal.")
    if not appeal.is_open:
        raise AppealConflict(f"Appeal {appeal.pk} is already decided.")


@transaction.atomic
def appeal_decide(*, reviewer, appeal: Appeal, outcome: str, reason: str, clauses=(), action: str = "",
                  duration_days: int | None = None, facts_for_holder: str = "") -> Appeal:
    """Decide an appeal with a reasoned outcome for the holder.

    upheld: nothing changes. overturned: the decision is reversed (enforcement lifted through the outbox,
    the account's status follows, ``decision_overturned`` is sent). modified: a lesser action under the
    same or another clause in force replaces it. The holder is told, with reasons and the out-of-court
    settlement options of DSA Art. 21.
    """
    appeal = Appeal.objects.select_for_update().select_related("decision", "account").get(pk=appeal.pk)
    ensure_can_decide_appeal(reviewer, appeal)
    outcome = Appeal.Outcome(outcome)
    if not reason.strip():
        raise AppealError("Write the reasons the holder will read.")
    ensure_within_limits(Appeal, error=AppealError, outcome_reason=reason.strip())
    if outcome == Appeal.Outcome.MODIFIED and (action not in Action.values or action == Action.NO_VIOLATION):
        raise AppealError("Choose the lesser action that replaces the decision (to lift it entirely, overturn it).")
    try:
        if outcome == Appeal.Outcome.OVERTURNED:
            decision_reverse_on_appeal(decision=appeal.decision, actor=reviewer, appeal_id=appeal.pk, reason=reason)
        elif outcome == Appeal.Outcome.MODIFIED:
            appeal.replacement = decision_replace_on_appeal(
                original=appeal.decision, reviewer=reviewer, clauses=list(clauses), action=action,
                duration_days=duration_days, facts_for_holder=facts_for_holder or reason, rationale=reason,
                appeal_id=appeal.pk)
    except PolicyViolation as exc:
        raise AppealError(str(exc)) from exc
    appeal.outcome, appeal.outcome_reason, appeal.decided_at = outcome, reason.strip(), timezone.now()
    appeal_transition(appeal=appeal, to=Appeal.State.DECIDED, actor=reviewer, reason=outcome.value,
                      fields=("outcome", "outcome_reason", "decided_at", "replacement"))
    record(actor=reviewer, action=AuditAction.APPEAL_DECIDED, target=appeal, data={
        "decision": appeal.decision_id, "outcome": outcome.value,
        "replacement": appeal.replacement_id})
    link = holder_link_issue(account=appeal.account, purpose=HolderLink.Purpose.OUTCOME)
    _email(to=appeal.account.contact_email, subject=f"Your appeal no. {appeal.pk} is decided",
           template="appeals/email_outcome.txt", context={"appeal": appeal, "sign_in_url": link},
           key=f"appeal-outcome-{appeal.pk}", target=appeal)
    return appeal


def holder_email_normalise(email: str) -> str:
    """One mailbox, one spelling: the key of the "email me a new link" limit and of the account lookup.

    Spaces around it go, case is folded (``casefold``, so ``Straße`` and ``STRASSE`` meet), and the domain
    takes its IDNA (punycode) form, so ``bücher.example`` and ``xn--bcher-kva.example`` are one domain.
    Otherwise ``Holder@Example.com`` or `` holder@example.com `` would each get their own allowance of emails
    to one mailbox. Local parts are case-sensitive only in theory; no provider we mail treats them so.
    """
    local, at, domain = email.strip().rpartition("@")
    if not at:
        return email.strip().casefold()
    domain = domain.strip().casefold().rstrip(".")
    # Not a valid IDNA name: kept as typed (folded); it matches no stored address anyway.
    with contextlib.suppress(UnicodeError):
        domain = domain.encode("idna").decode("ascii")
    return f"{local.strip().casefold()}@{domain}"


def _email_spellings(normalised: str) -> set[str]:
    """The forms a stored contact email of this mailbox may take (the database compares case-insensitively)."""
    local, _at, domain = normalised.rpartition("@")
    spellings = {normalised}
    with contextlib.suppress(UnicodeError):
        spellings.add(f"{local}@{domain.encode('ascii').decode('idna')}")
    return spellings


@transaction.atomic
def holder_link_request(*, email: str) -> None:
    """"Email me a new link": a link for each account with this contact email. The caller answers the same
    whatever happens here, so nobody learns which addresses we know (no account enumeration).

    The address is matched in its normal form (``holder_email_normalise``), as the rate limit keys it.
    """
    email = holder_email_normalise(email)
    lookup = Q()
    for spelling in _email_spellings(email):
        lookup |= Q(contact_email__iexact=spelling)
    candidates = Account.objects.filter(lookup).order_by("pk")
    for account in (a for a in candidates if holder_email_normalise(a.contact_email) == email):
        link = holder_link_issue(account=account, purpose=HolderLink.Purpose.REQUESTED)
        record(actor=Actor(type="anonymous", display="appeals portal"), action=AuditAction.HOLDER_LINK_REQUESTED,
               target=account, data={})
        _email(to=account.contact_email, subject="Your sign-in link to the appeals portal",
               template="appeals/email_link.txt", context={"account": account, "sign_in_url": link},
               key=f"holder-link-{secrets.token_hex(8)}", target=account)


def appeal_evidence_case(*, reviewer, appeal: Appeal) -> Case:
    """The case whose raw evidence (prompt excerpts) the appeal's reviewer may open: the appealed decision's.

    Invariant 2: the opening itself reads flags and writes the ``evidence.opened`` event on the case, with
    the appeal as its context; flags sit beside appeals, not below, so that is composed above both
    (``reviewapp.core.services.appeal_evidence_open``). (The case's own ``evidence_open`` admits its assignee,
    an approver and compliance; the appeal's reviewer is none of them, and must judge what the decision
    relied on.) Raises PermissionDenied for anyone else.
    """
    appeal = Appeal.objects.select_related("decision__case").get(pk=appeal.pk)
    _staff_can_handle(reviewer, appeal)
    return appeal.decision.case


def attachment_read(*, attachment: AppealAttachment, staff=None) -> bytes:
    """The bytes of an attachment. Callers reach it only through the holder's own selector or, for
    staff, the appeal's reviewer or compliance; staff openings are audited."""
    if staff is not None:
        appeal = attachment.appeal
        if not (staff.has_perm("appeals.view_appealattachment") or appeal.reviewer_id == staff.pk):
            raise PermissionDenied("Only the appeal's reviewer opens its attachments.")
        with transaction.atomic():
            record(actor=staff, action=AuditAction.ATTACHMENT_OPENED, target=attachment,
                   data={"appeal": appeal.pk, "sha256": attachment.sha256})
    return (Path(settings.APPEAL_ATTACHMENTS_DIR) / attachment.stored_as).read_bytes()
