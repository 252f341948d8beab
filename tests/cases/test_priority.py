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


# --- The formula in SQL (grouping's case update) agrees with the Python one --------------------------------------

def _sql_priorities(rows: list[tuple]) -> list[tuple[int, int]]:
    """(priority, SLA seconds) from priority_sql / sla_seconds_sql for (severity, score, total, last observed)."""
    from django.db import connection

    from reviewapp.audit import sqlarray
    from reviewapp.cases.priority import priority_sql, sla_seconds_sql

    priority = priority_sql(severity="r.severity", max_score="r.score", total_requests="r.total",
                            age_seconds="extract(epoch FROM (%(now)s - r.observed))::float8")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT p, {sla_seconds_sql('p')} FROM (SELECT r.n, {priority} AS p "
            "FROM unnest(%(severity)s::float8[], %(score)s::float8[], %(total)s::bigint[], "
            "%(observed)s::timestamptz[]) "
            "WITH ORDINALITY AS r(severity, score, total, observed, n)) AS q ORDER BY n",
            {"now": NOW, "severity": sqlarray.floats(r[0] for r in rows), "score": sqlarray.floats(r[1] for r in rows),
             "total": sqlarray.ints(r[2] for r in rows), "observed": sqlarray.texts(r[3].isoformat() for r in rows)})
        return cursor.fetchall()


@pytest.mark.django_db
def test_the_sql_formula_gives_what_the_python_one_gives_on_thousands_of_inputs_and_every_boundary():
    import random

    from reviewapp.cases.vocabulary import SIGNALS

    rng = random.Random(8)
    day = timedelta(days=1)
    ages = [timedelta(0), -day, day, day - timedelta(microseconds=1), day + timedelta(microseconds=1), 7 * day,
            7 * day + timedelta(microseconds=1), 30 * day, timedelta(hours=1, microseconds=7)]
    totals = [0, 1, 9, 10, 999_999, 1_000_000, 1_000_001, 2**53 + 1, 2**63 - 1]
    scores = [0.0, 1.0, 0.5, 0.1, 1 / 3, 0.999999]
    signals = [info.severity for info in SIGNALS.values()]
    rows = [(s, sc, t, NOW - a) for s in signals for sc in scores for t in totals for a in ages]
    rows += [(rng.choice(signals), rng.random(), rng.randrange(0, 10 ** rng.randint(0, 12)),
              NOW - timedelta(microseconds=rng.randrange(-10**11, 10**12))) for _ in range(4000)]
    by_severity = {info.severity: slug.value for slug, info in SIGNALS.items()}

    got = _sql_priorities(rows)

    expected = []
    for severity, score, total, observed in rows:
        p = case_priority(signals=[by_severity[severity]], max_score=score, total_requests=total,
                          last_observed=observed, now=NOW)
        expected.append((p, int(sla_for(p).total_seconds())))
    assert got == expected
    assert len({p for p, _ in got}) > 40  # the inputs reach most of the scale, not a handful of values


@pytest.mark.django_db
def test_the_sql_worst_signal_is_queue_for_on_every_set_of_signals_and_null_outside_the_vocabulary():
    from itertools import combinations

    from django.db import connection

    from reviewapp.audit import sqlarray
    from reviewapp.cases.vocabulary import SIGNALS, worst_signal_sql

    slugs = sorted(signal.value for signal in SIGNALS)
    sets = [list(c) for k in range(1, len(slugs) + 1) for c in combinations(slugs, k)]
    sets += [list(reversed(s)) for s in sets]  # stored order never matters
    with connection.cursor() as cursor:
        queue = worst_signal_sql("s", lambda info: f"'{info.queue.value}'")
        for signals in sets:
            cursor.execute(f"SELECT {queue} FROM (SELECT %s::text[] AS s) AS t", [sqlarray.texts(signals)])
            assert cursor.fetchone()[0] == queue_for(signals), signals
        cursor.execute(f"SELECT {queue} FROM (SELECT %s::text[] AS s) AS t",
                       [sqlarray.texts(["volume_anomaly", "not_a_signal"])])
        assert cursor.fetchone()[0] is None
