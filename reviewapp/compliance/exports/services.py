"""The one write of an export: its audit event, committed before the first row leaves."""

from __future__ import annotations

from datetime import date, datetime

from django.db import transaction

from reviewapp.audit import services as audit
from reviewapp.audit.actions import AuditAction

from .selectors import Dataset, export_count


@transaction.atomic
def export_record(*, actor, dataset: Dataset, fmt: str, first: date, last: date, start: datetime,
                  end: datetime) -> int:
    """Record who exported what (dataset, format, the UTC dates, the rows counted at the start); return the count."""
    rows = export_count(dataset, start, end)
    audit.record(actor=actor, action=AuditAction.COMPLIANCE_EXPORTED,
                 data={"dataset": dataset.slug, "format": fmt, "from": first.isoformat(), "to": last.isoformat(),
                       "rows": rows})
    return rows
