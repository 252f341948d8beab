"""Selectors for the staff home page: the appeals a senior reviewer handles, and those waiting for one.

One query per list and per count (see reviewapp/cases/worklist.py)."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import Appeal
from .selectors import APPEALS_QUEUE_ORDER


def appeals_of(user) -> QuerySet[Appeal]:
    """Open appeals ``user`` claimed, the review due soonest first."""
    return (Appeal.objects.filter(reviewer=user, state__in=Appeal.OPEN_STATES)
            .select_related("decision", "account").order_by(*APPEALS_QUEUE_ORDER))


def appeals_unclaimed() -> QuerySet[Appeal]:
    """Filed appeals nobody has claimed yet, in the queue's order (the review due soonest first)."""
    return (Appeal.objects.filter(state=Appeal.State.FILED, reviewer__isnull=True)
            .select_related("decision", "account").order_by(*APPEALS_QUEUE_ORDER))


def appeals_review_overdue(*, now=None) -> QuerySet[Appeal]:
    """Open appeals whose review was due (``Appeal.review_due_at``) before ``now``."""
    from django.utils import timezone

    now = now or timezone.now()
    return Appeal.objects.filter(state__in=Appeal.OPEN_STATES, filed_at__lt=now - Appeal.REVIEW_SLA)
