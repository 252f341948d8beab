"""The documented priority formula and SLA steps (reviewapp/cases/priority.py)."""

from datetime import UTC, datetime, timedelta

import pytest

from reviewapp.cases.priority import case_priority, sla_for
from reviewapp.cases.vocabulary import Queue, queue_for

NOW = datetime(2026, 11, 26, tzinfo=UTC)


def test_the_worst_case_scores_100_and_a_stale_mild_one_scores_low():
    assert case_priority(signals=["reasoning_extraction"], max_score=1.0, total_requests=10**6,
                         last_observed=NOW, now=NOW) == 100
    assert case_priority(signals=["volume_anomaly"], max_score=0.0, total_requests=0,
                         last_observed=NOW - timedelta(days=30), now=NOW) == 16


def test_each_term_weighs_as_documented():
    base = {"signals": ["volume_anomaly"], "max_score": 0.5, "total_requests": 999, "last_observed": NOW, "now": NOW}
    p = case_priority(**base)
    assert case_priority(**{**base, "signals": ["reasoning_extraction"]}) - p == 24  # 0.40 × (1.0 − 0.4)
    assert case_priority(**{**base, "max_score": 1.0}) - p == 15                     # 0.30 × 0.5
    assert case_priority(**{**base, "last_observed": NOW - timedelta(days=7)}) - p == -10  # recency 1 → 0


@pytest.mark.parametrize(("priority", "hours"), [(100, 4), (80, 4), (79, 24), (60, 24), (59, 72), (40, 72),
                                                 (39, 168), (0, 168)])
def test_sla_steps(priority, hours):
    assert sla_for(priority) == timedelta(hours=hours)


def test_queue_of_the_most_severe_signal():
    assert queue_for(["volume_anomaly"]) == Queue.VOLUME
    assert queue_for(["volume_anomaly", "account_cluster"]) == Queue.ACCOUNTS
    assert queue_for(["account_cluster", "capability_sweep"]) == Queue.EXTRACTION
