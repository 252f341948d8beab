"""Reads of the evidence-access log: who opened which account's raw evidence, when, in which case and role
(DESIGN.md invariant 2), which of those openings fell outside the opener's own assigned cases, and how many
each person made per week.

Everything comes from the audit trail, which keeps it for ever and never changes (invariant 1). An
``evidence.opened`` event holds its actor, the case as its target, the time, and in ``data`` the flags shown
and the context the opening page gave ("case workspace", "appeal 12", "Forum share proposal: …"). It does not
hold the account or the opener's role, so:

- the account is the case's (a case never changes account);
- the role "at the time" is the one set by the opener's last ``staff.created`` / ``staff.role_changed``
  event before the opening (both name the role they set); a person with no such event (made outside the
  staff service, say by ``createsuperuser``) shows their role now, marked as such.

"Own assigned case" (``OWN_RULE`` says it on the page) is decided from the audit trail too, as it was at
the time of the opening, never from the case's assignee now (which moves on):

- assignee: the opener had claimed the case (``case.claimed``) before the opening, and that claim had not
  ended in between: no ``case.released``, no ``case.claim_lapsed``, and no claim of the case by someone
  else (a take-over). A renewed claim by the same person keeps it theirs. A decided case stays its
  decider's: deciding does not end a claim.
- approver: the opener approved or sent back a decision of the case (``decision.approved`` /
  ``decision.sent_back``), before or after the opening — an approver reads the evidence before acting, so
  the act necessarily comes later.
- appeal reviewer: the opener had been assigned an appeal against a decision of the case
  (``appeal.claimed``) before the opening; an appeal's reviewer never changes once assigned.

Everything else is outside: a compliance officer (who is assigned nothing), a sharing officer choosing
excerpts for a share, a senior who looked at a case awaiting approval and left the approval to another.
Outside is not wrong: it is what someone should look at.

Pages are keyset-paged on the event id (one query a page, whatever the filters, no COUNT over the trail);
each row's account, role and "own" flags are correlated subqueries answered by the trail's target and
actor indexes, so a page costs one query however many rows it shows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import (
    BigIntegerField,
    CharField,
    Count,
    Exists,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    When,
)
from django.db.models import Case as CaseWhen
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce, Trunc

from appeals.models import Appeal
from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.cases.models import Case, Decision

PAGE_SIZE = 50
CASE_TARGET = "cases.case"
USER_TARGET = "people.user"

OWN_RULE = (
    "An opening counts as within the person's own assigned cases when, at that time, they held the case's "
    "claim (claimed it and had not released it, had it lapse or taken over by someone else), or they "
    "approved or sent back a decision of the case, or they had been assigned an appeal against one of its "
    "decisions. All of it is read from the audit trail as it was, not from the case as it is now. Every "
    "other opening is outside: a compliance officer, a sharing officer choosing excerpts, a senior who read "
    "a case awaiting approval and left the approval to someone else."
)


@dataclass(frozen=True)
class AccessFilters:
    person: int | None = None  # the opener's user id
    account: str = ""  # the platform account id (Account.external_id)
    case: int | None = None
    since: date | None = None  # openings on or after this day (UTC)
    until: date | None = None  # openings on or before this day (UTC)
    outside_only: bool = False


@dataclass
class AccessPage:
    openings: list[AuditEvent]
    before: int | None
    next_before: int | None  # the id the next (older) page starts below; None on the last page


def _day(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


# The case's key as a number, only where the target id is one (every evidence.opened names a case by its key;
# the guard keeps a malformed row from failing the whole page).
_CASE_PK = CaseWhen(When(target_id__regex=r"^[0-9]{1,18}$", then=Cast("target_id", BigIntegerField())),
                    default=None, output_field=BigIntegerField())


def _same_person(ref: str = "actor_id") -> Q:
    return Q(actor_type=AuditEvent.ActorType.USER, actor_id=OuterRef(ref))


def _held_claim() -> Exists:
    """The opener's claim of the case, live at the opening: claimed before it, not ended in between."""
    ended = AuditEvent.objects.filter(
        Q(action__in=[AuditAction.CASE_RELEASED, AuditAction.CASE_CLAIM_LAPSED])
        | (Q(action=AuditAction.CASE_CLAIMED) & ~Q(actor_id=OuterRef(OuterRef("actor_id")))),
        target_type=CASE_TARGET, target_id=OuterRef(OuterRef("target_id")),
        id__gt=OuterRef("id"), id__lt=OuterRef(OuterRef("id")),
    )
    claims = AuditEvent.objects.filter(
        _same_person(), action=AuditAction.CASE_CLAIMED, target_type=CASE_TARGET, target_id=OuterRef("target_id"),
        id__lt=OuterRef("id"),
    ).filter(~Exists(ended))
    return Exists(claims)


def _approved() -> Exists:
    decisions = Decision.objects.filter(case_id=OuterRef(OuterRef("case_pk"))).annotate(
        key=Cast("id", CharField())).values("key")
    return Exists(AuditEvent.objects.filter(
        _same_person(), action__in=[AuditAction.DECISION_APPROVED, AuditAction.DECISION_SENT_BACK],
        target_type="cases.decision", target_id__in=decisions))


def _appeal_reviewer() -> Exists:
    appeals = Appeal.objects.filter(decision__case_id=OuterRef(OuterRef("case_pk"))).annotate(
        key=Cast("id", CharField())).values("key")
    return Exists(AuditEvent.objects.filter(
        _same_person(), action=AuditAction.APPEAL_CLAIMED, target_type="appeals.appeal", target_id__in=appeals,
        id__lt=OuterRef("id")))


def _role_then() -> Subquery:
    set_by = (AuditEvent.objects.filter(
        action__in=[AuditAction.STAFF_CREATED, AuditAction.STAFF_ROLE_CHANGED], target_type=USER_TARGET,
        target_id=OuterRef("actor_id"), id__lt=OuterRef("id"))
        .order_by("-id").annotate(role=Coalesce(KT("data__to"), KT("data__role"))).values("role")[:1])
    return Subquery(set_by, output_field=CharField())


def _role_now() -> Subquery:
    groups = (Group.objects.filter(user=OuterRef("actor_pk")).order_by("name").values("name")[:1])
    return Subquery(groups, output_field=CharField())


def _annotated(openings: QuerySet) -> QuerySet:
    account = Case.objects.filter(pk=OuterRef("case_pk")).values("account__external_id")[:1]
    return (openings
            .annotate(case_pk=_CASE_PK,
                      actor_pk=CaseWhen(When(actor_id__regex=r"^[0-9]{1,18}$",
                                             then=Cast("actor_id", BigIntegerField())),
                                        default=None, output_field=BigIntegerField()))
            .annotate(account=Subquery(account, output_field=CharField()),
                      as_assignee=_held_claim(), as_approver=_approved(), as_appeal_reviewer=_appeal_reviewer(),
                      role_then=_role_then())
            .annotate(role_now=_role_now()))


def openings() -> QuerySet:
    """Every ``evidence.opened`` event of staff, with account, role and the three "own" flags annotated."""
    return _annotated(AuditEvent.objects.filter(action=AuditAction.EVIDENCE_OPENED, target_type=CASE_TARGET))


def _outside(queryset: QuerySet) -> QuerySet:
    return queryset.filter(as_assignee=False, as_approver=False, as_appeal_reviewer=False)


def openings_filtered(filters: AccessFilters) -> QuerySet:
    queryset = openings()
    if filters.person is not None:
        queryset = queryset.filter(actor_type=AuditEvent.ActorType.USER, actor_id=str(filters.person))
    if filters.case is not None:
        queryset = queryset.filter(target_id=str(filters.case))
    if filters.account:
        keys = Case.objects.filter(account__external_id=filters.account).annotate(
            key=Cast("id", CharField())).values("key")
        queryset = queryset.filter(target_id__in=keys)
    if filters.since:
        queryset = queryset.filter(created_at__gte=_day(filters.since))
    if filters.until:
        queryset = queryset.filter(created_at__lt=_day(filters.until + timedelta(days=1)))
    if filters.outside_only:
        queryset = _outside(queryset)
    return queryset


def openings_page(filters: AccessFilters, *, before: int | None = None, size: int = PAGE_SIZE) -> AccessPage:
    """One page of openings, newest first, below the event id ``before``: one query."""
    queryset = openings_filtered(filters)
    if before is not None:
        queryset = queryset.filter(id__lt=before)
    rows = list(queryset.order_by("-id")[:size + 1])
    for row in rows:
        row.role = row.role_then or row.role_now or ""
        row.role_is_current = not row.role_then
        row.own_as = [label for flag, label in (("as_assignee", "assignee"), ("as_approver", "approver"),
                                                ("as_appeal_reviewer", "appeal reviewer")) if getattr(row, flag)]
    more = len(rows) > size
    rows = rows[:size]
    return AccessPage(openings=rows, before=before, next_before=rows[-1].pk if more else None)


def outside_count(*, since: datetime, until: datetime | None = None) -> int:
    """How many openings since ``since`` fell outside the opener's own assigned cases (the home panel)."""
    queryset = openings().filter(created_at__gte=since)
    if until is not None:
        queryset = queryset.filter(created_at__lt=until)
    return _outside(queryset).count()


# ── per person per week ─────────────────────────────────────────────────────────────────────────────────────

@dataclass
class PersonWeeks:
    person_id: str
    name: str
    counts: list[int]  # one per week of ``weeks``, oldest first
    outside: list[int]
    total: int
    outside_total: int

    @property
    def cells(self) -> list[tuple[int, int]]:
        return list(zip(self.counts, self.outside, strict=True))


@dataclass
class WeeklyCounts:
    weeks: list[date]  # the Monday of each week, oldest first (ISO weeks, UTC)
    people: list[PersonWeeks]


def week_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def weekly_counts(*, since: date, until: date, person: int | None = None) -> WeeklyCounts:
    """Openings per person per ISO week (Monday, UTC) from the week of ``since`` to the week of ``until``,
    and how many of them were outside their own assigned cases: one query, grouped by the database."""
    first, last = week_of(since), week_of(until)
    queryset = openings().filter(created_at__gte=_day(first), created_at__lt=_day(last + timedelta(days=7)),
                                 actor_type=AuditEvent.ActorType.USER)
    if person is not None:
        queryset = queryset.filter(actor_id=str(person))
    outside = Q(as_assignee=False, as_approver=False, as_appeal_reviewer=False)
    rows = (queryset.annotate(week=Trunc("created_at", "week", tzinfo=UTC))
            .values("actor_id", "week")
            .annotate(n=Count("id"), outside=Count("id", filter=outside))
            .order_by())
    weeks = [first + timedelta(days=7 * i) for i in range((last - first).days // 7 + 1)]
    index = {week: i for i, week in enumerate(weeks)}
    counts: dict[str, list[int]] = defaultdict(lambda: [0] * len(weeks))
    outsides: dict[str, list[int]] = defaultdict(lambda: [0] * len(weeks))
    for row in rows:
        week = row["week"].astimezone(UTC).date()
        counts[row["actor_id"]][index[week]] += row["n"]
        outsides[row["actor_id"]][index[week]] += row["outside"]
    names = _names(counts)
    people = [PersonWeeks(person_id=pk, name=names.get(pk, f"user {pk}"), counts=counts[pk], outside=outsides[pk],
                          total=sum(counts[pk]), outside_total=sum(outsides[pk])) for pk in counts]
    people.sort(key=lambda p: (-p.total, p.name))
    return WeeklyCounts(weeks=weeks, people=people)


def _names(ids) -> dict[str, str]:
    keys = [int(pk) for pk in ids if pk.isdigit()]
    return {str(pk): username for pk, username in
            get_user_model().objects.filter(pk__in=keys).values_list("pk", "username")}


def person_by_username(username: str):
    """The staff member with this username (case-insensitive), or None."""
    return get_user_model().objects.filter(username__iexact=username.strip()).first()

