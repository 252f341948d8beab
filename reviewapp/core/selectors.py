"""Reads that need apps of one layer side by side (appeals and flags): composed here, above both (DESIGN.md)."""

from django.db.models import F

from appeals.models import Appeal
from appeals.selectors import OVERTURN_GROUPS, overturn_rates_of

RATE_GROUPS = (("clause", "Clause"), ("detector", "Detector"), ("reviewer", "Decided by"))
# An appeal counts under each detector whose flags opened the appealed decision's case.
_BY_DETECTOR = "decision__case__flags__detector__slug"


def overturn_rates(*, by: str) -> list[dict]:
    """Decided appeals and the share overturned or modified, grouped by clause, detector or reviewer.

    Rows: {"key", "decided", "overturned", "modified", "rate"} (appeals.selectors.overturn_rates_of).
    """
    if by == "detector":
        return overturn_rates_of(Appeal.objects.values(key=F(_BY_DETECTOR)))
    if by not in OVERTURN_GROUPS:
        raise ValueError(f"overturn rates are grouped by one of {[key for key, _ in RATE_GROUPS]}, not {by!r}")
    return overturn_rates_of(Appeal.objects.values(key=F(OVERTURN_GROUPS[by])))
