"""State changes that need apps of one layer side by side (appeals and flags): composed here, above both."""

from appeals.models import Appeal
from appeals.services import appeal_evidence_case
from flags.evidence import evidence_read_audited


def appeal_evidence_open(*, reviewer, appeal: Appeal) -> list[dict]:
    """The raw evidence (prompt excerpts) behind the appealed decision, for the appeal's reviewer.

    Invariant 2: appeals says who may (``appeal_evidence_case``, PermissionDenied for anyone else), flags reads
    the excerpts and writes the ``evidence.opened`` event on the case, with the appeal as its context.
    """
    case = appeal_evidence_case(reviewer=reviewer, appeal=appeal)
    return evidence_read_audited(user=reviewer, case=case, context=f"appeal {appeal.pk}")
