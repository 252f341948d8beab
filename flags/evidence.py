"""Opening a case's raw evidence (the prompt excerpts its flags carry), audited (DESIGN.md invariant 2).

The excerpts are flags' data, so the opening lives here, above cases: cases decides who may open them
(``reviewapp.cases.selectors.can_open_evidence``), flags reads them and writes the ``evidence.opened`` event
on the case. An appeal's reviewer opens them through the same read, composed above appeals and flags
(``reviewapp.core.appeal_evidence``).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F, Func, IntegerField, TextField
from django.db.models.functions import Cast

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.services import record
from reviewapp.cases.evidence import evidence_load
from reviewapp.cases.models import Case
from reviewapp.cases.selectors import can_open_evidence

from .models import Flag


def evidence_open(*, user, case: Case, context: str) -> list[dict]:
    """The raw evidence (prompt excerpts) of a case's flags, for someone allowed to see it.

    Refused (404 upstream) for anyone ``can_open_evidence`` does not admit; the opening itself is
    ``evidence_read_audited``.
    """
    case = Case.objects.get(pk=case.pk)  # the claim as it is now, not as the caller last saw it
    if not can_open_evidence(user, case):
        raise PermissionDenied("You may not open this case's evidence.")
    return evidence_read_audited(user=user, case=case, context=context)


def evidence_read_audited(*, user, case: Case, context: str) -> list[dict]:
    """Read a case's raw evidence and write the ``evidence.opened`` audit event: who, which case and
    flags, and in what context (DESIGN.md invariant 2). Callers check who may read it first: here for
    reviewers, approvers and compliance; ``appeals.services.appeal_evidence_case`` for an appeal's reviewer."""
    # The evidence travels as JSON text and is decoded only within the depth bound (cases.evidence): a
    # row stored deeper than that must not make the page or its audit event fail.
    flags = list(Flag.objects.filter(case=case, evidence__isnull=False).select_related("detector")
                 .order_by("-observed_to", "-id")
                 .annotate(evidence_text=Cast("evidence", TextField()), excerpt_count=_EXCERPT_COUNT)
                 .values("id", "external_id", "detector__slug", "signal", "evidence_text", "excerpt_count"))
    for flag in flags:
        flag["evidence"] = evidence_load(flag["evidence_text"])
    with transaction.atomic():
        record(actor=user, action=AuditAction.EVIDENCE_OPENED, target=case,
               data={"flags": [f["id"] for f in flags], "context": context,
                     "excerpts": sum(f.pop("excerpt_count") for f in flags)})
    return flags


class _ExcerptCount(Func):
    """How many excerpts a flag's evidence lists, counted by the database (no decoding in Python)."""

    template = ("CASE WHEN jsonb_typeof(%(expressions)s -> 'excerpts') = 'array' "
                "THEN jsonb_array_length(%(expressions)s -> 'excerpts') ELSE 0 END")
    output_field = IntegerField()


_EXCERPT_COUNT = _ExcerptCount(F("evidence"))
