"""The console home's evidence-access panel: this week's openings outside the openers' own assigned cases."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from django.utils import timezone

from .selectors import outside_count


def outside_this_week(user) -> dict:
    today = timezone.now().astimezone(UTC).date()
    monday = today - timedelta(days=today.weekday())
    return {"template": "compliance/access/_panel.html", "week_of": monday,
            "outside": outside_count(since=datetime.combine(monday, time.min, tzinfo=UTC))}
