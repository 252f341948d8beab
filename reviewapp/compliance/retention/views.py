"""The retention page: what the next purge would remove, and the last runs. A read: the purge is beat's, there is
no button (compliance officers change nothing; tests/compliance/test_read_only.py)."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from reviewapp.policy.selectors import clauses_in_force

from ..home import CONSOLE_PERMISSION
from .selectors import groups_for_display, purge_report, runs_newest_first

RUNS_SHOWN = 20


@login_required
@permission_required(CONSOLE_PERMISSION, raise_exception=True)
@require_safe
def retention(request):
    now = timezone.now()
    report = purge_report(now=now)
    oldest = report["emails"]["oldest_delivered"]
    return render(request, "compliance/retention/page.html", {
        "now": now, "report": report, "groups": groups_for_display(report),
        "emails_oldest": datetime.fromisoformat(oldest) if oldest else None,
        "runs": [(run, groups_for_display(run.counts)) for run in runs_newest_first()[:RUNS_SHOWN]],
        "clauses": clauses_in_force(),
        "undecided_days": settings.RETENTION_UNDECIDED_EVIDENCE_DAYS,
        "email_days": settings.RETENTION_EMAIL_BODY_DAYS,
        "purge_time": f"{settings.RETENTION_PURGE_HOUR:02d}:{settings.RETENTION_PURGE_MINUTE:02d}",
    })
