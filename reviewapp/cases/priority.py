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

case_priority and sla_for are the formula as written above, the reference: grouping computes it in PostgreSQL
(priority_sql, sla_seconds_sql below), and tests/cases/test_priority.py holds the SQL to these on thousands of
inputs. No other code calls them.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from .vocabulary import SIGNALS, Signal

SLA_STEPS = ((80, timedelta(hours=4)), (60, timedelta(hours=24)), (40, timedelta(days=3)))
SLA_DEFAULT = timedelta(days=7)
_WEIGHTS = {"severity": 0.40, "score": 0.30, "volume": 0.20, "recency": 0.10}


def case_priority(*, signals: list[str], max_score: float, total_requests: int, last_observed: datetime,
                  now: datetime) -> int:
    severity = max(SIGNALS[Signal(slug)].severity for slug in signals)
    volume = min(1.0, math.log10(1 + max(0, total_requests)) / 6)
    age_days = max(0.0, (now - last_observed).total_seconds() / 86400)
    recency = 1.0 if age_days <= 1 else max(0.0, 1 - (age_days - 1) / 6)
    w = _WEIGHTS
    return round(100 * (w["severity"] * severity + w["score"] * max_score + w["volume"] * volume
                        + w["recency"] * recency))


def sla_for(priority: int) -> timedelta:
    for floor, window in SLA_STEPS:
        if priority >= floor:
            return window
    return SLA_DEFAULT


# --- The same formula in PostgreSQL, for grouping's one-statement case update (services.cases_add_flags) --------
# Written as the same IEEE double operations in the same order as case_priority (PostgreSQL's float8 arithmetic,
# log10 and round are C's: round() of a double is rint(), half to even, as Python's round), so the two agree
# exactly; tests/cases/test_priority.py compares them on thousands of inputs, boundaries included. The weights
# and SLA steps are read from the constants here, so the two cannot drift apart.
def priority_sql(*, severity: str, max_score: str, total_requests: str, age_seconds: str) -> str:
    """case_priority as a PostgreSQL integer expression over SQL expressions: the worst signal's severity
    (float8), the highest score (float8), the request total (bigint) and the age of the newest observation in
    seconds (float8, ``now - last_observed``)."""
    age_days = f"GREATEST(0::float8, ({age_seconds}) / 86400)"
    recency = f"(CASE WHEN {age_days} <= 1 THEN 1::float8 ELSE GREATEST(0::float8, 1 - ({age_days} - 1) / 6) END)"
    volume = f"LEAST(1::float8, log10((GREATEST(0, {total_requests})::numeric + 1)::float8) / 6)"
    w = {name: repr(value) + "::float8" for name, value in _WEIGHTS.items()}
    return (f"round(100 * ({w['severity']} * ({severity}) + {w['score']} * ({max_score}) + {w['volume']} * {volume}"
            f" + {w['recency']} * {recency}))::integer")


def sla_seconds_sql(priority: str) -> str:
    """sla_for(priority) in seconds, as a PostgreSQL integer expression."""
    steps = " ".join(f"WHEN ({priority}) >= {floor} THEN {int(window.total_seconds())}" for floor, window in SLA_STEPS)
    return f"(CASE {steps} ELSE {int(SLA_DEFAULT.total_seconds())} END)"
