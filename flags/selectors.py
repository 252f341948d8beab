"""Reads of detectors and tokens."""

from django.db.models import QuerySet

from .models import Detector


def detectors_for_listing() -> QuerySet[Detector]:
    """Every detector with its tokens (prefetched: one query for the tokens of all detectors)."""
    return Detector.objects.prefetch_related("tokens")
