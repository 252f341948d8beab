"""Reads of cases, scoped by what the reader may see."""

from __future__ import annotations

from django.apps import apps
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, QuerySet

from .models import Case


def cases_visible_to(user) -> QuerySet[Case]:
    """Case summaries for staff holding ``cases.view_case``; nothing for anyone else.

    Summaries carry no raw evidence: opening excerpts is a separate, audited act (invariant 2).
    """
    if not user.has_perm("cases.view_case"):
        raise PermissionDenied("Your role cannot read cases.")
    return Case.objects.select_related("account", "campaign")


def with_flag_from_detector(cases: QuerySet[Case], detector_slug: str) -> QuerySet[Case]:
    flag = apps.get_model("flags", "Flag")  # flags depend on cases, never the reverse: look it up by name
    return cases.filter(Exists(flag.objects.filter(case=OuterRef("pk"), detector__slug=detector_slug)))


def recent_flags_of(case: Case, limit: int = 200):
    return case.flags.select_related("detector").order_by("-observed_to", "-id")[:limit]
