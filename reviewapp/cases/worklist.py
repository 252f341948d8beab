"""Selectors for the staff home page: a reviewer's own work, and the counts beside it.

Each list is one query (its rows carry what the page shows), each count one query, whatever the number of
rows: the home page is opened all day and must not grow with the work it lists.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from .models import Case, Decision, claim_lapsed, live_claim

HOME_ROWS = 10  # rows of each list on the home page; the counts say how many there are in all


def _sent_back_by(user) -> QuerySet[Decision]:
    return Decision.objects.filter(case=OuterRef("pk"), decided_by=user, state=Decision.State.SENT_BACK)


def sent_back_to(user, *, now: datetime | None = None) -> QuerySet[Case]:
    """Cases whose decision by ``user`` a senior sent back and that wait for them to decide again: in review,
    still theirs or with the claim lapsed (a case someone else claimed since is theirs now). Each row carries
    ``sent_back_reason``, the latest send-back's reason. Oldest claim deadline first."""
    now = now or timezone.now()
    latest = _sent_back_by(user).order_by("-decided_at", "-pk").values("sent_back_reason")[:1]
    return (Case.objects.filter(Exists(_sent_back_by(user)), state=Case.State.IN_REVIEW)
            .filter(Q(assignee=user) | claim_lapsed(now))
            .select_related("account").annotate(sent_back_reason=Subquery(latest))
            .order_by("lease_expires_at", "pk"))


def claims_of(user, *, now: datetime | None = None) -> QuerySet[Case]:
    """The cases ``user`` holds a live claim on, other than those sent back (listed apart), the claim ending
    soonest first."""
    now = now or timezone.now()
    return (Case.objects.filter(live_claim(now), assignee=user)
            .exclude(Exists(_sent_back_by(user))).select_related("account", "campaign")
            .order_by("lease_expires_at", "pk"))


def decisions_of_waiting_for_approval(user) -> QuerySet[Decision]:
    """Decisions ``user`` took that wait for a senior's second approval, oldest first."""
    return (Decision.objects.filter(decided_by=user, state=Decision.State.AWAITING_APPROVAL)
            .select_related("case", "account").order_by("decided_at", "pk"))


def campaigns_with_open_cases() -> QuerySet:
    """Campaigns that still have open cases, the most open first, each with ``open_cases`` (one query)."""
    from django.db.models import Count

    from .models import Campaign

    return (Campaign.objects.annotate(open_cases=Count("cases", filter=Q(cases__state__in=Case.OPEN_STATES)))
            .filter(open_cases__gt=0).order_by("-open_cases", "name"))
