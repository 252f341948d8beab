"""Selectors for the admin's home page: what about detectors needs attention (one query each)."""

from __future__ import annotations

from django.db.models import Exists, OuterRef

from .models import Detector, DetectorToken, FlagSetAside


def set_aside_count() -> int:
    """Flags grouping set aside (they wait for someone to look at the detector that sent them)."""
    return FlagSetAside.objects.count()


def detectors_without_token_count() -> int:
    """Active detectors with no live token: they cannot post flags."""
    live = DetectorToken.objects.filter(detector=OuterRef("pk"), revoked_at__isnull=True)
    return Detector.objects.filter(active=True).exclude(Exists(live)).count()
