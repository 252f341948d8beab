"""A thing's history in the audit trail: its own events and the events of everything under it.

Audit events name what they were done to as ``(target_type, target_id)`` (reviewapp/compliance/links.py). A
case's story is spread over many targets — the case, its flags and the batches they came in, its notes, its
decisions, their statements and appeals, the appeals' messages and attachments, replacement decisions, the
Forum shares made from it or naming its account and their pushes, and the outbox deliveries (enforcement
webhooks, emails to the holder, posts to the hub) made for any of these — so "the history of case 12" is
the events whose target is any of them, and the grouping events whose data lists the case.

What lies under what (``SUBJECT_TYPES``):

  case          its flags and their batches, notes, grouping events naming it, the shares proposed from it,
                and every decision of the case with what lies under a decision
  decision      its statement, appeals (their messages, attachments and replacement decisions with their
                statements), the shares that included its account or were withdrawn for it, their pushes
  appeal        its messages, attachments, the replacement decision and its statement, the withdrawals it
                caused (their pushes)
  share         its pushes (a share's versions, approval and withdrawals are recorded against the share)

and, for all of them, the outbox messages whose target is any of the above. The query is one statement
over the trail: the rows under the subject are found first (a query per kind, on the small tables), and the
trail is then asked for each kind's ids as a list, so every branch is a lookup on its (target_type,
target_id) index whatever the size of the trail (``_listed``); it pages by event id like the explorer's.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import CharField, Q, QuerySet
from django.db.models.functions import Cast

from appeals.models import Appeal, AppealAttachment, AppealMessage
from flags.models import Flag
from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.cases.models import Case, CaseNote, Decision, StatementOfReasons
from reviewapp.forum.models import ForumPush, ShareAccount, ShareProposal, ShareWithdrawal
from reviewapp.outbox.models import OutboxMessage

from ..links import target_label

CASE, DECISION, APPEAL, SHARE = "cases.case", "cases.decision", "appeals.appeal", "forum.shareproposal"
SUBJECT_TYPES = (CASE, DECISION, APPEAL, SHARE)
MAX_LISTED = 10_000  # ids of one kind passed to the trail's query as a list (_listed)


class UnknownSubject(ValueError):
    """A subject that is not ``<type>:<id>`` of a type with a history (SUBJECT_TYPES)."""


@dataclass(frozen=True)
class Subject:
    target_type: str
    target_id: int

    @classmethod
    def parse(cls, text: str) -> Subject:
        """``cases.case:12`` → Subject; anything else raises UnknownSubject naming what was wrong."""
        target_type, _, target_id = (text or "").strip().partition(":")
        if target_type not in SUBJECT_TYPES:
            raise UnknownSubject(f"{target_type or '(empty)'!r} has no history here: use one of "
                                 f"{', '.join(SUBJECT_TYPES)}, as <type>:<id>.")
        if not (target_id.isascii() and target_id.isdigit() and len(target_id) <= 18):
            raise UnknownSubject(f"{target_id or '(empty)'!r} is not an id: write <type>:<id>, e.g. {CASE}:12.")
        return cls(target_type, int(target_id))

    def __str__(self) -> str:
        return f"{self.target_type}:{self.target_id}"

    @property
    def label(self) -> str:
        return target_label(self.target_type, str(self.target_id))


Targets = list[tuple[str, QuerySet]]  # (target type, a subquery of its ids as text)


def _ids(rows: QuerySet, field: str = "pk") -> QuerySet:
    """A subquery of ``field`` as text, the type of an event's target id."""
    return rows.annotate(_as_text=Cast(field, CharField())).values("_as_text")


def _under_decisions(decisions: QuerySet[Decision]) -> Targets:
    """What lies under these decisions (module docstring), themselves included."""
    appeals = Appeal.objects.filter(decision__in=decisions)
    withdrawals = ShareWithdrawal.objects.filter(Q(decision__in=decisions) | Q(appeal_id__in=appeals.values("pk")))
    shares = ShareProposal.objects.filter(
        Q(case__in=decisions.values("case_id"))
        | Q(pk__in=ShareAccount.objects.filter(account_id__in=decisions.values("account_id"))
            .values("version__proposal_id"))
        | Q(pk__in=withdrawals.values("proposal_id")))
    return [
        (DECISION, _ids(decisions)),
        ("cases.statementofreasons", _ids(StatementOfReasons.objects.filter(decision__in=decisions))),
        *_under_appeals(appeals),
        *_under_shares(shares),
    ]


def _under_appeals(appeals: QuerySet[Appeal]) -> Targets:
    replacements = Decision.objects.filter(replaces_on_appeal__in=appeals)
    withdrawn = ShareWithdrawal.objects.filter(appeal_id__in=appeals.values("pk"), push__isnull=False)
    return [
        (APPEAL, _ids(appeals)),
        ("appeals.appealmessage", _ids(AppealMessage.objects.filter(appeal__in=appeals))),
        ("appeals.appealattachment", _ids(AppealAttachment.objects.filter(appeal__in=appeals))),
        ("forum.forumpush", _ids(withdrawn, "push_id")),
        (DECISION, _ids(replacements)),
        ("cases.statementofreasons", _ids(StatementOfReasons.objects.filter(decision__in=replacements))),
    ]


def _under_shares(shares: QuerySet[ShareProposal]) -> Targets:
    return [(SHARE, _ids(shares)), ("forum.forumpush", _ids(ForumPush.objects.filter(proposal__in=shares)))]


def _under(subject: Subject) -> tuple[Targets, list[Q]]:
    """The targets under ``subject``, and the conditions on events that name it only in their data."""
    pk = subject.target_id
    if subject.target_type == CASE:
        flags = Flag.objects.filter(case_id=pk)
        return [
            (CASE, _ids(Case.objects.filter(pk=pk))), ("flags.flag", _ids(flags)),
            ("flags.flagbatch", _ids(flags.distinct(), "batch_id")),
            ("cases.casenote", _ids(CaseNote.objects.filter(case_id=pk))),
            *_under_decisions(Decision.objects.filter(case_id=pk)),
        ], [Q(action=AuditAction.FLAGS_GROUPED, data__contains={"cases": [pk]})]
    if subject.target_type == DECISION:
        return _under_decisions(Decision.objects.filter(pk=pk)), []
    if subject.target_type == APPEAL:
        return _under_appeals(Appeal.objects.filter(pk=pk)), []
    return _under_shares(ShareProposal.objects.filter(pk=pk)), []


def _listed(ids: QuerySet) -> list[str] | QuerySet:
    """The ids a subquery finds, as a list (up to MAX_LISTED of them), else the subquery itself.

    A list makes each branch of the final OR an exact lookup on the trail's (target_type, target_id) index; a
    subquery inside an OR is a filter PostgreSQL applies to every event of that type, so only a case with more
    than MAX_LISTED flags pays that (for its flags' events alone)."""
    found = list(ids.values_list("_as_text", flat=True).distinct()[: MAX_LISTED + 1])
    return found if len(found) <= MAX_LISTED else ids


def _any_listed(targets: list[tuple[str, list[str] | QuerySet]]) -> Q:
    """Any of these targets, given their ids (``_listed``); a kind with none is left out."""
    combined = Q(pk__in=[])
    for target_type, listed in targets:
        if not isinstance(listed, list) or listed:
            combined |= Q(target_type=target_type, target_id__in=listed)
    return combined


@dataclass(frozen=True)
class History:
    """A subject's history: the condition on events, its events and the outbox messages sent for it (queries
    not yet run)."""

    condition: Q
    messages: QuerySet[OutboxMessage]

    @property
    def events(self) -> QuerySet[AuditEvent]:
        return AuditEvent.objects.filter(self.condition)


def history_of(subject: Subject) -> History:
    """The events of ``subject`` and of everything under it (module docstring), with the events of the outbox
    messages sent for any of them; the ids under it are looked up once for both."""
    targets, named_in_data = _under(subject)
    listed = [(target_type, _listed(ids)) for target_type, ids in targets]
    messages = OutboxMessage.objects.filter(_any_listed(listed))
    condition = _any_listed([*listed, ("outbox.outboxmessage", _listed(_ids(messages)))])
    for extra in named_in_data:
        condition |= extra
    return History(condition=condition, messages=messages)


def history_condition(subject: Subject) -> Q:
    """The history of ``subject`` as a condition on AuditEvent (for the explorer's other filters to join)."""
    return history_of(subject).condition


def history_events(subject: Subject) -> QuerySet[AuditEvent]:
    """The history of ``subject`` (module docstring), in no order: the caller orders and pages it."""
    return history_of(subject).events
