"""The documented case priority formula and the SLA it implies (README "Cases and priority").

    priority = round(100 × (0.40 × severity + 0.30 × score + 0.20 × volume + 0.10 × recency))

- severity: the highest severity among the case's signals (vocabulary.SIGNALS), 0–1
- score:    the highest detector score among its flags, 0–1
- volume:   min(1, log10(1 + total request_count) / 6) — a million requests or more counts fully
- recency:  1 if its newest observation ended within a day of the last flag's arrival, falling
            linearly to 0 at seven days

SLA: priority ≥ 80 → 4 hours; ≥ 60 → 24 hours; ≥ 40 → 3 days; otherwise 7 days, counted from when
the case opened. Priority is recomputed when flags arrive; a rising priority can only bring the due
time closer, never push it back.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from .vocabulary import SIGNALS, Signal

SLA_STEPS = ((80, timedelta(hours=4)), (60, timedelta(hours=24)), (40, timedelta(days=3)))
SLA_DEFAULT = timedelta(days=7)


def case_priority(*, signals: list[str], max_score: float, total_requests: int, last_observed: datetime,
                  now: datetime) -> int:
    severity = max(SIGNALS[Signal(slug)].severity for slug in signals)
    volume = min(1.0, math.log10(1 + max(0, total_requests)) / 6)
    age_days = max(0.0, (now - last_observed).total_seconds() / 86400)
    recency = 1.0 if age_days <= 1 else max(0.0, 1 - (age_days - 1) / 6)
    return round(100 * (0.40 * severity + 0.30 * max_score + 0.20 * volume + 0.10 * recency))


def sla_for(priority: int) -> timedelta:
    for floor, window in SLA_STEPS:
        if priority >= floor:
            return window
    return SLA_DEFAULT
