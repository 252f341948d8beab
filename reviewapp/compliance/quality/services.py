"""Writes of the quality area: drawing a sample, a senior's blind verdict, opening evidence for it, and
raising or clearing calibration alerts. Each writes its audit event in the same transaction (invariant 1).

None of them changes a case, a decision, an appeal, a share or a flag: compliance draws a sample (the
console's own row), a senior's verdict sits beside the decision it looks at again.
"""

from __future__ import annotations

import secrets
from datetime import date

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.utils import timezone

from flags.evidence import evidence_read_audited
from reviewapp.audit.actions import AuditAction
from reviewapp.audit.services import SYSTEM, record
from reviewapp.limits import ensure_within_limits
from reviewapp.policy.enforcement import Action

from .calibration import calibration_by_version, crosses
from .models import CalibrationAlert, SecondLook, SecondLookSample
from .selectors import DRAW_PERMISSION, sample_population, second_look_for_senior

MAX_PER_STRATUM = 500
MAX_SEED = 2**53 - 1  # the largest integer RFC 8785 (the audit chain's canonical JSON) can hold exactly


class SampleError(ValueError):
    """What was asked for cannot be drawn (names the field)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class SecondLookError(ValueError):
    """A verdict that cannot be recorded as given."""


class SecondLookConflict(SecondLookError):
    """The second look was given already."""


def _stratum_sql(strata: str) -> str:
    return {
        SecondLookSample.Strata.NONE: "'all'",
        SecondLookSample.Strata.CLAUSE: "refs",
        SecondLookSample.Strata.REVIEWER: "reviewer",
        SecondLookSample.Strata.CLAUSE_REVIEWER: "refs || ' · ' || reviewer",
    }[SecondLookSample.Strata(strata)]


def _draw(*, population_sql: str, population_params, strata: str, per_stratum: int, seed: int):
    """The draw, in PostgreSQL: in each stratum, the ``per_stratum`` decisions whose md5(seed:id) is smallest.

    A decision's rank depends only on the seed and its own id, so the same seed over the same decisions draws
    the same ones (the audit event records both), and no decision list is loaded into Python.
    """
    # Formatted in: the ORM's own SQL of the population (its values stay parameters) and a fixed stratum key.
    sql = f"""
    WITH population AS ({population_sql}),
    keyed AS (SELECT id, {_stratum_sql(strata)} AS stratum FROM population),
    ranked AS (SELECT id, stratum, count(*) OVER () AS population,
                      row_number() OVER (PARTITION BY stratum ORDER BY md5(%s || ':' || id::text), id) AS rank
               FROM keyed)
    SELECT id, stratum, population FROM ranked WHERE rank <= %s ORDER BY stratum, id
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [*population_params, str(seed), per_stratum])
        return cursor.fetchall()


@transaction.atomic
def sample_draw(*, actor, per_stratum: int, strata: str, clause_refs=(), reviewer_ids=(),
                decided_from: date | None = None, decided_to: date | None = None,
                seed: int | None = None) -> SecondLookSample:
    """Draw decided cases for a blind second look (compliance officers; audited with every parameter).

    A decision is sampled at most once; the sample changes no case or decision.
    """
    if not actor.has_perm(DRAW_PERMISSION):
        raise PermissionDenied("Your role does not draw samples.")
    try:
        strata = SecondLookSample.Strata(strata)
    except ValueError:
        raise SampleError("strata", f"strata must be one of {', '.join(SecondLookSample.Strata.values)}") from None
    if not isinstance(per_stratum, int) or not 1 <= per_stratum <= MAX_PER_STRATUM:
        raise SampleError("per_stratum", f"per_stratum must be a whole number from 1 to {MAX_PER_STRATUM}")
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise SampleError("seed", f"seed must be a whole number from 0 to {MAX_SEED}")
    if decided_from and decided_to and decided_from > decided_to:
        raise SampleError("decided_to", "decided_to is before decided_from")
    seed = secrets.randbelow(MAX_SEED) if seed is None else seed
    clause_refs, reviewer_ids = sorted(set(clause_refs)), sorted(set(reviewer_ids))
    # One draw at a time: two at once could pick the same decision (sampled at most once).
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('compliance_quality.sample_draw'))")
    population = sample_population(clause_refs=clause_refs, reviewer_ids=reviewer_ids,
                                   decided_from=decided_from, decided_to=decided_to)
    sql, params = population.query.sql_with_params()
    picks = _draw(population_sql=sql, population_params=params, strata=strata, per_stratum=per_stratum, seed=seed)
    sample = SecondLookSample.objects.create(
        drawn_by=actor, seed=seed, strata=strata, per_stratum=per_stratum, clause_refs=clause_refs,
        reviewer_ids=reviewer_ids, decided_from=decided_from, decided_to=decided_to,
        population=picks[0][2] if picks else 0)
    SecondLook.objects.bulk_create([SecondLook(sample=sample, decision_id=pk, stratum=stratum)
                                    for pk, stratum, _ in picks])
    strata_counts: dict[str, int] = {}
    for _, stratum, _ in picks:
        strata_counts[stratum] = strata_counts.get(stratum, 0) + 1
    record(actor=actor, action=AuditAction.COMPLIANCE_SAMPLE_DRAWN, target=sample, data={
        "seed": seed, "strata": strata.value, "per_stratum": per_stratum, "clause_refs": clause_refs,
        "reviewer_ids": reviewer_ids, "decided_from": decided_from, "decided_to": decided_to,
        "population": sample.population, "decisions": [pk for pk, _, _ in picks], "strata_counts": strata_counts})
    return sample


@transaction.atomic
def second_look_record(*, reviewer, look: SecondLook, action: str, clauses: list, rationale: str) -> SecondLook:
    """A senior's blind verdict on a sampled decision's case (audited). Invariant 5: never by someone who took
    part in the decision; the verdict cites clauses of the version the decision was taken under, which must
    permit its action. Compared with the decision here: same action, same set of clauses."""
    look = second_look_for_senior(reviewer, look.pk)  # 404 / 403 as the page says
    look = SecondLook.objects.select_for_update().select_related("decision").get(pk=look.pk)
    if look.is_reviewed:
        raise SecondLookConflict("This second look was given already.")
    if action not in Action.values:
        raise SecondLookError(f"action must be one of {', '.join(Action.values)}")
    if not clauses:
        raise SecondLookError("Cite at least one clause.")
    foreign = [c.ref for c in clauses if c.version_id != look.decision.policy_version_id]
    if foreign:
        raise SecondLookError(f"clauses {', '.join(foreign)} are not of the policy version the case was decided under")
    refusing = [c.ref for c in clauses if action not in c.permitted_actions]
    if refusing:
        raise SecondLookError(f"clause {', '.join(refusing)} does not permit the action '{action}'")
    rationale = rationale.strip()
    if not rationale:
        raise SecondLookError("Write the rationale for your verdict.")
    ensure_within_limits(SecondLook, error=SecondLookError, rationale=rationale)
    first_refs = set(look.decision.clauses.values_list("ref", flat=True))
    refs = sorted(c.ref for c in clauses)
    look.reviewed_by, look.reviewed_at, look.action, look.rationale = reviewer, timezone.now(), action, rationale
    look.same_action = action == look.decision.action
    look.same_clauses = set(refs) == first_refs
    look.save(update_fields=["reviewed_by", "reviewed_at", "action", "rationale", "same_action", "same_clauses"])
    look.clauses.set(clauses)
    record(actor=reviewer, action=AuditAction.COMPLIANCE_SECOND_LOOK_RECORDED, target=look, data={
        "sample": look.sample_id, "decision": look.decision_id, "action": action, "clauses": refs,
        "same_action": look.same_action, "same_clauses": look.same_clauses})
    return look


def second_look_evidence_open(*, reviewer, look: SecondLook) -> list[dict]:
    """The case's raw evidence for its second reviewer, through the audited opening (invariant 2)."""
    look = second_look_for_senior(reviewer, look.pk)
    if look.is_reviewed and look.reviewed_by_id != reviewer.pk:
        raise PermissionDenied("Another senior reviewer gave this second look.")
    return evidence_read_audited(user=reviewer, case=look.decision.case, context=f"second look {look.pk}")


@transaction.atomic
def calibration_alerts_check(*, now=None) -> dict[str, int]:
    """Raise an alert for each detector version whose overturn rate is at or above
    ``COMPLIANCE_OVERTURN_ALERT`` with at least ``COMPLIANCE_OVERTURN_ALERT_MIN_APPEALS`` decided appeals and no
    open alert; clear the open alert of a version back below the line. One audit event per raise or clear:
    an alert is raised once per crossing, however often this runs (beat, every
    ``COMPLIANCE_CALIBRATION_CHECK_SECONDS``)."""
    threshold, min_appeals = settings.COMPLIANCE_OVERTURN_ALERT, settings.COMPLIANCE_OVERTURN_ALERT_MIN_APPEALS
    with connection.cursor() as cursor:  # two checks at once would both raise the same alert
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('compliance_quality.calibration_alerts'))")
    open_alerts = {(a.detector_id, a.detector_version): a
                   for a in CalibrationAlert.objects.select_for_update().filter(cleared_at__isnull=True)}
    raised = cleared = 0
    for row in calibration_by_version():
        key = (row.detector_id, row.version)
        over = crosses(row, threshold=threshold, min_appeals=min_appeals)
        data = {"detector": row.detector, "detector_version": row.version, "overturn_rate": row.overturn_rate,
                "overturned": row.overturned, "appeals_decided": row.appeals_decided, "threshold": threshold,
                "min_appeals": min_appeals}
        if over and key not in open_alerts:
            alert = CalibrationAlert.objects.create(
                detector_id=row.detector_id, detector_version=row.version, overturn_rate=row.overturn_rate,
                appeals_decided=row.appeals_decided, overturned=row.overturned, threshold=threshold)
            record(actor=SYSTEM, action=AuditAction.COMPLIANCE_CALIBRATION_ALERT_RAISED, target=alert, data=data)
            raised += 1
        elif not over and key in open_alerts:
            alert = open_alerts[key]
            alert.cleared_at = now or timezone.now()
            alert.save(update_fields=["cleared_at"])
            record(actor=SYSTEM, action=AuditAction.COMPLIANCE_CALIBRATION_ALERT_CLEARED, target=alert, data=data)
            cleared += 1
    return {"raised": raised, "cleared": cleared}
