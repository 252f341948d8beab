"""Reads of the console's verification runs, and the home page's panel."""

from __future__ import annotations

from django.db.models import QuerySet

from reviewapp.audit.selectors import latest_checkpoint
from reviewapp.audit.worklist import events_after_checkpoint

from ..home import CONSOLE_PERMISSION
from .models import VerificationRun


def runs_newest_first() -> QuerySet[VerificationRun]:
    return VerificationRun.objects.select_related("started_by").order_by("-pk")


def last_finished_run() -> VerificationRun | None:
    return runs_newest_first().filter(status__in=VerificationRun.FINISHED).first()


def home_panel(user) -> dict | None:
    """The compliance home's panel: the last verification run's result and when, the run under way if any,
    and the chain's unwitnessed tail (events after the last signed checkpoint, or not yet sequenced)."""
    if not user.has_perm(CONSOLE_PERMISSION):
        return None
    checkpoint = latest_checkpoint()
    runs = list(runs_newest_first()[:1])
    latest = runs[0] if runs else None
    return {
        "template": "compliance/verification/panel.html",
        "last_run": latest if latest is not None and latest.finished else last_finished_run(),
        "under_way": latest if latest is not None and not latest.finished else None,
        "checkpoint": checkpoint,
        "unwitnessed": events_after_checkpoint(checkpoint),
    }
