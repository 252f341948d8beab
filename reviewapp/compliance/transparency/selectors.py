"""The transparency report: what the trust-and-safety team did, month by month (UTC), over a period of months.

Every number is counted by PostgreSQL — two or three aggregate queries per part, nine in all, whatever the number of
decisions, appeals, shares or cases — and Python only lays the grouped rows out on the period's months.

Definitions (the report page says them in the same words):

- decisions: taken by a reviewer and counted in the month they were taken (``decided_at``): enforced, no violation,
  expired and lifted, or reversed on appeal — the states detector calibration counts
  (``quality.calibration.COUNTED_STATES``). Not counted: awaiting second approval, sent back, and a decision an
  appeal put in place of another (``modified``): that is an appeal outcome. A decision citing two clauses counts
  once under each clause, and once in the month's total.
- appeals: filed, counted in the month filed; decided, counted in the month decided, by outcome. Overturn rate =
  overturned ÷ appeals decided in the month.
- median time to decision: from the case opening to the decision, over the decisions of the month; median time to
  appeal outcome: from filing to the outcome, over the appeals decided in the month (``percentile_cont(0.5)``).
- Forum: shares approved by a sharing officer (month of approval); withdrawals (month withdrawn): a whole share by
  a sharing officer, or one account's part after its decision was overturned on appeal.
- researcher programme: cases opened in the month for accounts in the researcher access programme (enrolment as it
  is now: ``Account.researcher_programme`` keeps no history), by how the case ended — still open; overturned on
  appeal; modified on appeal; action taken (a violation decision that stands); no violation; closed without a
  decision (for instance every flag withdrawn by its source).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.contrib.postgres.aggregates import ArrayAgg
from django.db.models import (
    Aggregate,
    CharField,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models import Case as CaseWhen
from django.db.models.functions import Extract, TruncMonth

from appeals.models import Appeal
from reviewapp.cases.models import Case, Decision, open_case
from reviewapp.compliance.quality.calibration import COUNTED_STATES
from reviewapp.forum.models import ShareApproval, ShareWithdrawal
from reviewapp.policy.enforcement import Action

HOUR = 3600.0


class Median(Aggregate):
    """PostgreSQL's ``percentile_cont(0.5) WITHIN GROUP (ORDER BY …)``: the median, interpolated between the two
    middle values of an even count."""

    function = "percentile_cont"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


def month_start(day: date) -> date:
    return day.replace(day=1)


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class Period:
    """Whole months, ``first`` to ``last`` inclusive (each the first day of its month, UTC)."""

    first: date
    last: date

    @property
    def months(self) -> list[date]:
        count = (self.last.year - self.first.year) * 12 + self.last.month - self.first.month + 1
        return [add_months(self.first, i) for i in range(count)]

    @property
    def start(self) -> datetime:
        return datetime(self.first.year, self.first.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """Exclusive: the first instant of the month after ``last``."""
        after = add_months(self.last, 1)
        return datetime(after.year, after.month, 1, tzinfo=UTC)

    def within(self, field: str) -> Q:
        return Q(**{f"{field}__gte": self.start, f"{field}__lt": self.end})


def _month(field: str) -> TruncMonth:
    return TruncMonth(field, tzinfo=UTC)


def _key(value: datetime) -> date:
    return value.astimezone(UTC).date().replace(day=1)


def _hours(start: str, end: str) -> ExpressionWrapper:
    return ExpressionWrapper(Extract(ExpressionWrapper(F(end) - F(start), output_field=DurationField()), "epoch")
                             / HOUR, output_field=FloatField())


def counted_decisions() -> QuerySet:
    """Decisions the report counts (the module docstring says which and why)."""
    return (Decision.objects.filter(state__in=[s.value for s in COUNTED_STATES])
            .filter(~Exists(Appeal.objects.filter(replacement_id=OuterRef("pk")))))


# ── decisions by clause, action and month; median time to decision ──────────────────────────────────────────

ACTIONS: list[tuple[str, str]] = list(Action.choices)  # mildest first


@dataclass(frozen=True)
class DecisionMonth:
    month: date
    total: int
    by_action: dict[str, int]
    median_hours: float | None  # case opened → decision


@dataclass(frozen=True)
class ClauseRow:
    month: date
    clause: str
    titles: str
    action: str
    decisions: int

    @property
    def action_label(self) -> str:
        return Action(self.action).label


@dataclass(frozen=True)
class Decisions:
    months: list[DecisionMonth]
    by_clause: list[ClauseRow]  # month, clause, action: only the combinations that occurred
    clause_totals: dict[str, int]

    @property
    def total(self) -> int:
        return sum(m.total for m in self.months)

    def series(self) -> list[tuple[str, str, list[int]]]:
        """(key, label, count per month) per action, mildest first."""
        return [(value, label, [m.by_action[value] for m in self.months]) for value, label in ACTIONS]


def decisions(period: Period) -> Decisions:
    """Two queries: the month's totals by action with the median time to decision, and month × clause × action."""
    in_period = counted_decisions().filter(period.within("decided_at"))
    per_action = {value: Count("id", filter=Q(action=value)) for value in Action.values}
    months = {_key(row["month"]): row for row in
              in_period.annotate(month=_month("decided_at")).values("month")
              .annotate(total=Count("id"), median=Median(_hours("case__opened_at", "decided_at")), **per_action)
              .order_by()}
    rows = (in_period.annotate(month=_month("decided_at"), clause=F("clauses__ref"))
            .values("month", "clause", "action")
            .annotate(n=Count("id", distinct=True), titles=ArrayAgg("clauses__title", distinct=True))
            .order_by("month", "clause", "action"))
    by_clause = [ClauseRow(month=_key(r["month"]), clause=r["clause"], titles=" / ".join(sorted(r["titles"])),
                           action=r["action"], decisions=r["n"]) for r in rows]
    totals: dict[str, int] = defaultdict(int)
    for row in by_clause:
        totals[row.clause] += row.decisions
    empty = {"total": 0, "median": None, **dict.fromkeys(Action.values, 0)}
    return Decisions(
        months=[DecisionMonth(month=m, total=months.get(m, empty)["total"],
                              by_action={a: months.get(m, empty)[a] for a in Action.values},
                              median_hours=months.get(m, empty)["median"]) for m in period.months],
        by_clause=by_clause, clause_totals=dict(sorted(totals.items())))


# ── appeals, overturn rate, median time to outcome ──────────────────────────────────────────────────────────

@dataclass(frozen=True)
class AppealMonth:
    month: date
    filed: int
    decided: int
    upheld: int
    overturned: int
    modified: int
    median_hours: float | None  # filed → decided

    @property
    def overturn_rate(self) -> float | None:
        return self.overturned / self.decided if self.decided else None


def appeals(period: Period) -> list[AppealMonth]:
    """Two queries: filed per month; decided per month by outcome, with the median time from filing."""
    filed = {_key(r["month"]): r["n"] for r in
             Appeal.objects.filter(period.within("filed_at")).annotate(month=_month("filed_at"))
             .values("month").annotate(n=Count("id")).order_by()}
    outcomes = {value: Count("id", filter=Q(outcome=value)) for value in Appeal.Outcome.values}
    decided = {_key(r["month"]): r for r in
               Appeal.objects.filter(period.within("decided_at"), state=Appeal.State.DECIDED)
               .annotate(month=_month("decided_at")).values("month")
               .annotate(n=Count("id"), median=Median(_hours("filed_at", "decided_at")), **outcomes).order_by()}
    out = []
    for m in period.months:
        row = decided.get(m, {})
        out.append(AppealMonth(month=m, filed=filed.get(m, 0), decided=row.get("n", 0), upheld=row.get("upheld", 0),
                               overturned=row.get("overturned", 0), modified=row.get("modified", 0),
                               median_hours=row.get("median")))
    return out


# ── Forum: shares and withdrawals ───────────────────────────────────────────────────────────────────────────

@dataclass(frozen=True)
class ForumMonth:
    month: date
    shares_approved: int
    withdrawn_by_officer: int  # whole shares
    withdrawn_after_appeal: int  # one account's part, its decision overturned

    @property
    def withdrawals(self) -> int:
        return self.withdrawn_by_officer + self.withdrawn_after_appeal


def forum(period: Period) -> list[ForumMonth]:
    """Two queries: approvals per month; withdrawals per month, whole shares and accounts apart."""
    approved = {_key(r["month"]): r["n"] for r in
                ShareApproval.objects.filter(period.within("approved_at")).annotate(month=_month("approved_at"))
                .values("month").annotate(n=Count("id")).order_by()}
    withdrawn = {_key(r["month"]): r for r in
                 ShareWithdrawal.objects.filter(period.within("withdrawn_at")).annotate(month=_month("withdrawn_at"))
                 .values("month").annotate(whole=Count("id", filter=Q(account__isnull=True)),
                                           account=Count("id", filter=Q(account__isnull=False))).order_by()}
    return [ForumMonth(month=m, shares_approved=approved.get(m, 0),
                       withdrawn_by_officer=withdrawn.get(m, {}).get("whole", 0),
                       withdrawn_after_appeal=withdrawn.get(m, {}).get("account", 0)) for m in period.months]


# ── researcher-programme accounts: flagged, and how their cases ended ───────────────────────────────────────

RESEARCHER_OUTCOMES: list[tuple[str, str]] = [
    ("open", "Still open"),
    ("overturned", "Overturned on appeal"),
    ("modified", "Modified on appeal"),
    ("action", "Action taken"),
    ("no_violation", "No violation"),
    ("closed", "Closed without a decision"),
]


@dataclass(frozen=True)
class ResearcherMonth:
    month: date
    accounts: int  # distinct researcher-programme accounts with a case opened this month
    by_outcome: dict[str, int]

    @property
    def cases(self) -> int:
        return sum(self.by_outcome.values())


@dataclass(frozen=True)
class Researchers:
    months: list[ResearcherMonth]
    accounts: int  # distinct over the whole period (an account flagged in two months counts once)

    @property
    def cases(self) -> int:
        return sum(m.cases for m in self.months)

    @property
    def totals(self) -> dict[str, int]:
        return {key: sum(m.by_outcome[key] for m in self.months) for key, _ in RESEARCHER_OUTCOMES}

    def series(self) -> list[tuple[str, str, list[int]]]:
        return [(key, label, [m.by_outcome[key] for m in self.months]) for key, label in RESEARCHER_OUTCOMES]


def _case_outcome() -> CaseWhen:
    appeal_of_case = Appeal.objects.filter(decision__case_id=OuterRef("pk"), state=Appeal.State.DECIDED)
    decision_of_case = counted_decisions().filter(case_id=OuterRef("pk"))
    return CaseWhen(
        When(open_case(), then=Value("open")),
        When(Exists(appeal_of_case.filter(outcome=Appeal.Outcome.OVERTURNED)), then=Value("overturned")),
        When(Exists(appeal_of_case.filter(outcome=Appeal.Outcome.MODIFIED)), then=Value("modified")),
        When(Exists(decision_of_case.exclude(action=Action.NO_VIOLATION)), then=Value("action")),
        When(Exists(decision_of_case.filter(action=Action.NO_VIOLATION)), then=Value("no_violation")),
        default=Value("closed"), output_field=CharField())


def researchers(period: Period) -> Researchers:
    """Two queries: cases per month by outcome (with distinct accounts), and distinct accounts over the period."""
    cases = Case.objects.filter(period.within("opened_at"), account__researcher_programme=True)
    rows = (cases.annotate(month=_month("opened_at"), outcome=_case_outcome()).values("month", "outcome")
            .annotate(n=Count("id")).order_by())
    accounts = {_key(r["month"]): r["n"] for r in
                cases.annotate(month=_month("opened_at")).values("month")
                .annotate(n=Count("account_id", distinct=True)).order_by()}
    counts: dict[date, dict[str, int]] = defaultdict(lambda: dict.fromkeys((k for k, _ in RESEARCHER_OUTCOMES), 0))
    for row in rows:
        counts[_key(row["month"])][row["outcome"]] += row["n"]
    return Researchers(
        months=[ResearcherMonth(month=m, accounts=accounts.get(m, 0), by_outcome=counts[m]) for m in period.months],
        accounts=cases.aggregate(n=Count("account_id", distinct=True))["n"])


# ── the whole report ────────────────────────────────────────────────────────────────────────────────────────

@dataclass(frozen=True)
class TransparencyReport:
    period: Period
    decisions: Decisions
    appeals: list[AppealMonth]
    forum: list[ForumMonth]
    researchers: Researchers


CHARTS = ("decisions", "appeals", "durations", "forum", "researchers")


def transparency_report(period: Period, *, only: str | None = None) -> TransparencyReport:
    """The report over ``period``; ``only`` (one of CHARTS) computes just what that chart needs (a CSV download).

    Queries: decisions 2, appeals 2, forum 2, researchers 3 — nine for the whole report, whatever the data.
    """
    need = set(CHARTS) if only is None else {only}
    return TransparencyReport(
        period=period,
        decisions=decisions(period) if need & {"decisions", "durations"} else None,
        appeals=appeals(period) if need & {"appeals", "durations"} else None,
        forum=forum(period) if "forum" in need else None,
        researchers=researchers(period) if "researchers" in need else None,
    )
