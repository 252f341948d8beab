"""Reads for the second look (the population, the seniors' worklist, the blind view, agreement) and alerts."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.postgres.aggregates import StringAgg
from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, Q, QuerySet
from django.http import Http404

from appeals.models import Appeal
from appeals.selectors import decisions_taken_part_in
from flags.models import Flag
from reviewapp.cases.models import Decision
from reviewapp.policy.models import Clause

from .calibration import COUNTED_STATES
from .models import CalibrationAlert, SecondLook, SecondLookSample

DRAW_PERMISSION = "compliance_quality.draw_secondlooksample"
REVIEW_PERMISSION = "compliance_quality.review_secondlook"
BLIND_FLAGS_SHOWN = 50


def sample_population(*, clause_refs=(), reviewer_ids=(), decided_from=None, decided_to=None) -> QuerySet:
    """Decided cases a sample may draw from: decisions taken by a reviewer (calibration.COUNTED_STATES, not an
    appeal's replacement), not sampled before, within the filters. Values: id, refs ("T-1+T-2"), reviewer."""
    decisions = Decision.objects.filter(state__in=COUNTED_STATES, replaces_on_appeal__isnull=True).exclude(
        pk__in=SecondLook.objects.values("decision_id"))
    if clause_refs:  # a subquery, so the refs below still name every clause the decision cited
        decisions = decisions.filter(pk__in=Decision.clauses.through.objects.filter(
            clause__ref__in=list(clause_refs)).values("decision_id"))
    if reviewer_ids:
        decisions = decisions.filter(decided_by_id__in=list(reviewer_ids))
    if decided_from:
        decisions = decisions.filter(decided_at__date__gte=decided_from)
    if decided_to:
        decisions = decisions.filter(decided_at__date__lte=decided_to)
    return (decisions.order_by().values("id")
            .annotate(refs=StringAgg("clauses__ref", delimiter="+", order_by="clauses__ref", default=""),
                      reviewer=F("decided_by__username")))


def samples_listing() -> QuerySet:
    return SecondLookSample.objects.select_related("drawn_by").annotate(
        drawn=Count("second_looks"), reviewed=Count("second_looks", filter=Q(second_looks__reviewed_at__isnull=False)),
        disagreed=Count("second_looks", filter=Q(second_looks__same_action=False))).order_by("-drawn_at", "-id")


def sample_looks(sample: SecondLookSample) -> QuerySet:
    """A sample's second looks with the first decision beside each (compliance only)."""
    return (sample.second_looks.select_related("decision__decided_by", "decision__case", "reviewed_by")
            .order_by("stratum", "id"))


# ── The senior reviewer's side: blind ────────────────────────────────────────────────────────────────


def took_part(user, decisions: list[Decision]) -> set[int]:
    """Decisions (ids) the person may not second-review (invariant 5): they took part in the case (decided or
    approved a decision of it, claimed it, sent a decision back: ``appeals.selectors.decisions_taken_part_in``),
    or reviewed an appeal against the decision — any of which shows them the first decision."""
    taken = decisions_taken_part_in(user, decisions)
    taken |= set(Appeal.objects.filter(decision__in=[d.pk for d in decisions], reviewer=user)
                 .values_list("decision_id", flat=True))
    return taken


def pending_second_looks() -> QuerySet:
    """Sampled decisions still waiting for their second look, oldest sample first (no decision data)."""
    return (SecondLook.objects.filter(reviewed_at__isnull=True)
            .select_related("decision__case__account").only(
                "id", "sample_id", "decision__id", "decision__case__id", "decision__case__opened_at",
                "decision__case__queue", "decision__case__flag_count", "decision__case__account__external_id")
            .order_by("sample_id", "id"))


def second_look_for_senior(user, pk: int) -> SecondLook:
    """A second look the senior may give: 404 when it does not exist (or the person is no senior), 403 when
    they took part in the decision."""
    if not user.has_perm(REVIEW_PERMISSION):
        raise Http404("No such second look.")
    look = (SecondLook.objects.select_related("decision__case__account", "decision__policy_version", "reviewed_by")
            .filter(pk=pk).first())
    if look is None:
        raise Http404("No such second look.")
    if took_part(user, [look.decision]):
        raise PermissionDenied("You took part in this decision: another senior reviewer gives its second look.")
    return look


@dataclass(frozen=True)
class BlindCase:
    """What a second reviewer sees: the case, its flags and the policy, and nothing of the first decision."""

    look_id: int
    case_id: int
    account: str
    queue: str
    opened_at: object
    signals: list[str]
    flag_count: int
    total_requests: int
    max_score: float
    flags: list[dict]
    policy_version: object
    clauses: list[Clause]
    reviewed: bool
    my_verdict: SecondLook | None


def blind_case(user, look: SecondLook) -> BlindCase:
    """The blind view of a sampled decision's case. The decision only names the case and the policy version it
    was taken under; its action, clauses, rationale, facts, reviewer and approver are never read into it, nor
    the account's enforcement status (which would tell the action)."""
    decision, case = look.decision, look.decision.case
    flags = list(Flag.objects.filter(case_id=case.pk).select_related("detector").order_by("observed_from", "id")
                 .values("external_id", "detector__slug", "detector_version", "signal", "score", "observed_from",
                         "observed_to", "request_count")[:BLIND_FLAGS_SHOWN])
    clauses = list(Clause.objects.filter(version_id=decision.policy_version_id).order_by("position"))
    mine = look if look.is_reviewed and look.reviewed_by_id == user.pk else None
    return BlindCase(look_id=look.pk, case_id=case.pk, account=case.account.external_id, queue=case.get_queue_display(),
                     opened_at=case.opened_at, signals=list(case.signals), flag_count=case.flag_count,
                     total_requests=case.total_requests, max_score=case.max_score, flags=flags,
                     policy_version=decision.policy_version, clauses=clauses, reviewed=look.is_reviewed,
                     my_verdict=mine)


# ── Compliance's side: agreement and disagreements ────────────────────────────────────────────────────


def _agreement(rows) -> list[dict]:
    return [{**row, "action_rate": row["agreed"] / row["reviewed"] if row["reviewed"] else None,
             "clause_rate": row["same_clauses"] / row["reviewed"] if row["reviewed"] else None} for row in rows]


_COUNTS = {"reviewed": Count("id", distinct=True),
           "agreed": Count("id", filter=Q(same_action=True), distinct=True),
           "same_clauses": Count("id", filter=Q(same_clauses=True), distinct=True)}


def agreement_by_reviewer() -> list[dict]:
    """Per first reviewer: second looks given, how many took the same action, how many cited the same clauses."""
    reviewed = SecondLook.objects.filter(reviewed_at__isnull=False)
    return _agreement(reviewed.values(key=F("decision__decided_by__username")).annotate(**_COUNTS).order_by("key"))


def agreement_by_clause() -> list[dict]:
    """Per clause the first decision cited (a decision citing two clauses counts under each)."""
    return _agreement(SecondLook.objects.filter(reviewed_at__isnull=False).values(key=F("decision__clauses__ref"))
                      .annotate(**_COUNTS).order_by("key"))


def agreement_overall() -> dict:
    row = SecondLook.objects.filter(reviewed_at__isnull=False).aggregate(**_COUNTS)
    return _agreement([row])[0]


def disagreements() -> QuerySet:
    """Second looks whose action differs from the first decision's, newest first (compliance only)."""
    return (SecondLook.objects.filter(same_action=False)
            .select_related("decision__decided_by", "decision__approved_by", "decision__case__account", "reviewed_by")
            .prefetch_related("clauses", "decision__clauses").order_by("-reviewed_at", "-id"))


def open_alerts() -> list[CalibrationAlert]:
    return list(CalibrationAlert.objects.filter(cleared_at__isnull=True).select_related("detector")
                .order_by("detector__slug", "detector_version"))
