"""Reads of detectors, tokens and set-aside flags."""

from django.db.models import Count, QuerySet

from .models import Detector, FlagSetAside

SET_ASIDE_SHOWN = 50


def detectors_for_listing() -> QuerySet[Detector]:
    """Every detector with its tokens (prefetched: one query for the tokens of all detectors) and how many
    of its flags grouping set aside."""
    return Detector.objects.prefetch_related("tokens").annotate(set_aside_count=Count("set_aside_flags"))


def set_aside_recent(limit: int = SET_ASIDE_SHOWN) -> list[FlagSetAside]:
    """The most recently set-aside flags, newest first, with their detector and flag's external id."""
    return list(FlagSetAside.objects.select_related("detector", "flag").only(
        "id", "reason", "set_aside_at", "detector__slug", "flag__id", "flag__external_id",
        "flag__account_external_id")[:limit])
