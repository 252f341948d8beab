"""Reads of detectors, tokens, set-aside flags, and the flags of a case."""

from django.db import connection
from django.db.models import BooleanField, Count, Exists, ExpressionWrapper, Max, Min, OuterRef, Q, QuerySet

from .models import Detector, Flag, FlagKey, FlagSetAside
from .retention import EVIDENCE_HELD, RETENTION_MARKER

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


# ── A case's flags ──────────────────────────────────────────────────────────────────────────────────────
# Flags point at their case (``Flag.case``); cases never read this table (DESIGN.md: dependencies run one
# way). The pages and API answers that show a case with its flags are composed at this level
# (flags.case_pages, flags.case_api) from the case's own reads in reviewapp.cases and these.


def flags_of_case(case, limit: int = 200) -> QuerySet[Flag]:
    """The case's most recent flags for the workspace table and the API: whether each has evidence, never the
    evidence itself."""
    has_evidence = ExpressionWrapper(EVIDENCE_HELD, output_field=BooleanField())
    # Removed by the retention purge (flags.retention): the page says so rather than "no evidence".
    removed = ExpressionWrapper(Q(evidence__has_key=RETENTION_MARKER), output_field=BooleanField())
    return (Flag.objects.filter(case=case).select_related("detector").defer("evidence")
            .annotate(has_evidence=has_evidence, evidence_removed=removed).order_by("-observed_to", "-id")[:limit])


def cases_with_flag_from_detector(cases: QuerySet, detector_slug: str) -> QuerySet:
    """Those of ``cases`` that hold at least one flag of the detector."""
    return cases.filter(Exists(Flag.objects.filter(case=OuterRef("pk"), detector__slug=detector_slug)))


_TIMELINE = """
SELECT day::date, count(*), round(sum(coalesce(f.request_count, 0)::numeric / f.days)), max(f.score)
FROM (SELECT request_count, score, (observed_from AT TIME ZONE 'UTC')::date AS first_day,
             (observed_to AT TIME ZONE 'UTC')::date AS last_day,
             (observed_to AT TIME ZONE 'UTC')::date - (observed_from AT TIME ZONE 'UTC')::date + 1 AS days
      FROM flags_flag WHERE case_id = %s) f
CROSS JOIN generate_series(f.first_day, f.last_day, interval '1 day') AS day
GROUP BY 1 ORDER BY 1
"""


def flag_timeline(case) -> list[dict]:
    """The case's activity per UTC day: flags whose observation window covers the day, their requests
    (a flag's count spread evenly over the days of its window) and the highest score among them."""
    with connection.cursor() as cursor:
        cursor.execute(_TIMELINE, [case.pk])
        return [{"day": day, "flags": flags, "requests": int(requests), "max_score": max_score}
                for day, flags, requests, max_score in cursor.fetchall()]


def detector_provenance(case) -> list[dict]:
    """Which detectors (and versions) raised the case's flags, how many, over which period."""
    return list(Flag.objects.filter(case=case).order_by()
                .values("detector__slug", "detector__name", "detector_version")
                .annotate(flags=Count("pk"), first=Min("observed_from"), last=Max("observed_to"))
                .order_by("detector__slug", "detector_version"))


def flags_by_external_id(detector_id: int, external_ids) -> QuerySet[Flag]:
    """A detector's stored flags by their external ids, through flags_flagkey's primary key: flags_flag is
    partitioned by month and has no index on (detector, external_id); each key names its flag's id and month,
    so each flag is one index probe of its own partition (docs/flags-indexes.md)."""
    keys = list(FlagKey.objects.filter(detector_id=detector_id, external_id__in=list(external_ids))
                .values_list("flag_id", "received_at"))
    if not keys:
        return Flag.objects.none()
    return Flag.objects.filter(pk__in=[pk for pk, _ in keys], received_at__in={at for _, at in keys})

