"""Detector calibration: how each detector version's cases ended with people, and on appeal.

Definitions (the calibration page says them in the same words):

- flags: flags the version raised; cases: distinct cases holding at least one of them (a case flagged by two
  versions counts for each).
- decisions: decisions taken on those cases by a reviewer — enforced, no violation, expired and lifted, or reversed
  on appeal. Not counted: a decision still awaiting second approval, one sent back, and a decision that an appeal
  put in place of another (``modified``): that is an appeal outcome, not a review of the detector's flags.
- violation decisions: decisions whose action is not "no violation"; cases decided: distinct cases with a decision.
- appealed: decisions with at least one appeal; appeals decided: decisions with a decided appeal;
  overturned: decisions an appeal overturned; modified: decisions an appeal replaced by a lesser action.
- overturn rate = overturned ÷ appeals decided (an open appeal has no outcome yet, so it is left out).
- share later overturned = overturned ÷ violation decisions.
- precision against human review = violation decisions ÷ cases decided.

Everything is counted by PostgreSQL in one statement, whatever the number of flags, cases and appeals.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection

from appeals.models import Appeal
from flags.models import Detector, Flag
from reviewapp.cases.models import Decision
from reviewapp.policy.enforcement import Action

# The decisions that count (the module docstring says why these).
COUNTED_STATES = (Decision.State.ENFORCED, Decision.State.NO_ACTION, Decision.State.LIFTED, Decision.State.REVERSED)


@dataclass(frozen=True)
class VersionCalibration:
    detector_id: int
    detector: str
    version: str
    flags: int
    cases: int
    decisions: int
    by_action: dict[str, int]
    cases_decided: int
    violation_decisions: int
    appealed: int
    appeals_decided: int
    overturned: int
    modified: int

    @property
    def overturn_rate(self) -> float | None:
        return self.overturned / self.appeals_decided if self.appeals_decided else None

    @property
    def share_overturned(self) -> float | None:
        return self.overturned / self.violation_decisions if self.violation_decisions else None

    @property
    def precision(self) -> float | None:
        return self.violation_decisions / self.cases_decided if self.cases_decided else None

    @property
    def actions(self) -> list[tuple[str, int]]:
        """(label, count) per action, mildest first, for the page."""
        return [(label, self.by_action.get(value, 0)) for value, label in Action.choices]


def _sql() -> str:
    flag, decision, appeal, detector = (Flag._meta.db_table, Decision._meta.db_table, Appeal._meta.db_table,
                                        Detector._meta.db_table)
    per_action = ", ".join(f"count(o.id) FILTER (WHERE o.action = '{value}') AS \"{value}\""
                           for value in Action.values)
    # Only table names (from the models) and the fixed action codes are formatted in; values are parameters.
    return f"""
WITH version_flags AS (
    SELECT detector_id, detector_version, count(*) AS flags, count(DISTINCT case_id) AS cases
    FROM {flag} GROUP BY detector_id, detector_version
), version_cases AS (
    SELECT DISTINCT detector_id, detector_version, case_id FROM {flag} WHERE case_id IS NOT NULL
), outcomes AS (
    SELECT d.id, d.case_id, d.action,
           EXISTS (SELECT 1 FROM {appeal} a WHERE a.decision_id = d.id) AS appealed,
           EXISTS (SELECT 1 FROM {appeal} a WHERE a.decision_id = d.id AND a.state = %(decided)s) AS appeal_decided,
           EXISTS (SELECT 1 FROM {appeal} a WHERE a.decision_id = d.id AND a.outcome = %(overturned)s) AS overturned,
           EXISTS (SELECT 1 FROM {appeal} a WHERE a.decision_id = d.id AND a.outcome = %(modified)s) AS modified
    FROM {decision} d
    WHERE d.state = ANY(%(states)s)
      AND NOT EXISTS (SELECT 1 FROM {appeal} r WHERE r.replacement_id = d.id)
)
SELECT vf.detector_id, det.slug, vf.detector_version, vf.flags, vf.cases,
       count(o.id) AS decisions, count(DISTINCT o.case_id) AS cases_decided,
       count(o.id) FILTER (WHERE o.action <> %(no_violation)s) AS violation_decisions,
       count(o.id) FILTER (WHERE o.appealed) AS appealed,
       count(o.id) FILTER (WHERE o.appeal_decided) AS appeals_decided,
       count(o.id) FILTER (WHERE o.overturned) AS overturned,
       count(o.id) FILTER (WHERE o.modified) AS modified,
       {per_action}
FROM version_flags vf
JOIN {detector} det ON det.id = vf.detector_id
LEFT JOIN version_cases vc ON vc.detector_id = vf.detector_id AND vc.detector_version = vf.detector_version
LEFT JOIN outcomes o ON o.case_id = vc.case_id
GROUP BY vf.detector_id, det.slug, vf.detector_version, vf.flags, vf.cases
ORDER BY det.slug, vf.detector_version
"""  # noqa: S608


def calibration_by_version() -> list[VersionCalibration]:
    """One row per detector and detector version that raised a flag (one query)."""
    params = {"decided": Appeal.State.DECIDED.value, "overturned": Appeal.Outcome.OVERTURNED.value,
              "modified": Appeal.Outcome.MODIFIED.value, "states": [s.value for s in COUNTED_STATES],
              "no_violation": Action.NO_VIOLATION.value}
    with connection.cursor() as cursor:
        cursor.execute(_sql(), params)
        rows = cursor.fetchall()
    fixed = 12
    return [VersionCalibration(
        detector_id=row[0], detector=row[1], version=row[2], flags=row[3], cases=row[4], decisions=row[5],
        cases_decided=row[6], violation_decisions=row[7], appealed=row[8], appeals_decided=row[9],
        overturned=row[10], modified=row[11],
        by_action=dict(zip(Action.values, row[fixed:], strict=True))) for row in rows]


def crosses(row: VersionCalibration, *, threshold: float, min_appeals: int) -> bool:
    """Whether the version is past the alert line: enough decided appeals, and the overturn rate at or above it."""
    return row.appeals_decided >= min_appeals and row.overturn_rate is not None and row.overturn_rate >= threshold
