"""Writes for detectors, their tokens and flags. One ingestion path serves the API and backfills.

Invariant 3 (DESIGN.md): ``(detector, external_id)`` is unique in the database; a replay creates
nothing and says so; one bad item never blocks the good ones; nothing accepted is lost (grouping
happens after commit, and the reconciler keeps at it until no flag is left without a case).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec
import psycopg
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.services import Actor, record
from reviewapp.limits import ensure_within_limits
from reviewapp.people.tokens import token_digest, token_display_prefix, token_new

from .models import Detector, DetectorToken, FlagBatch
from .schema import FlagV1, ItemErrors, canonical_bytes, parse_flag


class DetectorError(ValueError):
    """A detector or token change that cannot be made; the message says why."""


TOKEN_PREFIX = "rvd_"  # noqa: S105 — a public marker that makes leaked tokens easy to scan for


@transaction.atomic
def detector_ensure(*, actor, slug: str, name: str = "", owner_team: str = "", description: str = "") -> Detector:
    ensure_within_limits(Detector, name=name, owner_team=owner_team, description=description)
    detector, created = Detector.objects.get_or_create(
        slug=slug, defaults={"name": name or slug, "owner_team": owner_team, "description": description})
    if created:
        record(actor=actor, action=AuditAction.DETECTOR_CREATED, target=detector,
               data={"slug": slug, "name": detector.name, "owner_team": owner_team})
    return detector


@transaction.atomic
def detector_set_active(*, actor, detector: Detector, active: bool) -> Detector:
    detector = Detector.objects.select_for_update().get(pk=detector.pk)
    if detector.active != active:
        detector.active = active
        detector.save(update_fields=["active"])
        record(actor=actor, action=AuditAction.DETECTOR_UPDATED, target=detector, data={"active": active})
    return detector


@transaction.atomic
def detector_token_create(*, actor, detector: Detector) -> tuple[DetectorToken, str]:
    """A new token for one detector. Returns the token row and the token itself, which is never stored."""
    detector = Detector.objects.select_for_update().get(pk=detector.pk)
    if not detector.active:
        raise DetectorError(f"detector {detector.slug} is inactive; reactivate it before issuing a token")
    token = token_new(TOKEN_PREFIX)
    row = DetectorToken.objects.create(
        detector=detector, prefix=token_display_prefix(token, TOKEN_PREFIX), token_hash=token_digest(token),
        created_by=getattr(actor, "display", "") or str(actor),
    )
    record(actor=actor, action=AuditAction.DETECTOR_TOKEN_CREATED, target=row,
           data={"detector": detector.slug, "prefix": row.prefix})
    return row, token


@transaction.atomic
def detector_token_revoke(*, actor, token: DetectorToken) -> DetectorToken:
    token = DetectorToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        record(actor=actor, action=AuditAction.DETECTOR_TOKEN_REVOKED, target=token,
               data={"detector": token.detector.slug, "prefix": token.prefix})
    return token


@transaction.atomic
def detector_token_rotate(*, actor, token: DetectorToken) -> tuple[DetectorToken, str]:
    """Revoke a token and issue its replacement in one step (refused for a token already revoked, so two
    admins rotating the same token at once do not both get a replacement)."""
    token = DetectorToken.objects.select_for_update().select_related("detector").get(pk=token.pk)
    if token.revoked_at is not None:
        raise DetectorError(f"token {token.prefix}… was already revoked; issue a new token instead")
    if not token.detector.active:
        raise DetectorError(f"detector {token.detector.slug} is inactive; revoke the token, or reactivate the "
                            "detector before rotating it")
    detector_token_revoke(actor=actor, token=token)
    return detector_token_create(actor=actor, detector=token.detector)


# --- Ingestion -------------------------------------------------------------------------------------

@dataclass
class IngestResult:
    batch_id: int | None = None
    created: int = 0
    duplicates: int = 0
    conflicts: list[dict] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "batch_id": self.batch_id,
            "created": self.created,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "rejected": self.rejected,
        }

    def add(self, other: IngestResult) -> None:
        self.created += other.created
        self.duplicates += other.duplicates
        self.conflicts.extend(other.conflicts)
        self.rejected.extend(other.rejected)


_STAGING_COLUMNS = (
    "ord", "detector_id", "external_id", "detector_version", "account_external_id", "organization_id",
    "signal", "score", "observed_from", "observed_to", "request_count", "cluster_id", "evidence", "content_hash",
)
_STAGING_DDL = """
CREATE TEMP TABLE IF NOT EXISTS flags_staging (
    ord integer, detector_id bigint, external_id text, detector_version text, account_external_id text,
    organization_id text, signal text, score double precision, observed_from timestamptz,
    observed_to timestamptz, request_count bigint, cluster_id text, evidence text, content_hash text
) ON COMMIT DELETE ROWS
"""
# Binary COPY: about half the client CPU of text COPY per row (no text formatting of dates and numbers).
# evidence travels as its UTF-8 JSON bytes (dumped as bytea: PostgreSQL reads them with the column's own
# binary input, text here; jsonb, after its version byte, in the direct COPY below).
_STAGING_TYPES = (
    "int4", "int8", "text", "text", "text", "text", "text", "float8", "timestamptz", "timestamptz", "int8", "text",
    "bytea", "text",
)
# Every flag's (detector_id, external_id) is unique in flags_flagkey (flags/models.py FlagKey: flags_flag is
# partitioned by month, and a unique index there could only say "unique within a month"). A flag is stored with
# its key in one transaction, key first: the key's primary key is where concurrent writers of the same flag
# wait for each other and where a replay stops, as at the unique constraint on the flags before.
# A batch none of whose flags is stored yet (nearly every batch) is copied straight into flags_flagkey and
# flags_flag, with ids taken from the flags' sequence beforehand: about half PostgreSQL's work of staging the rows
# and inserting them again. Anything else takes the staging path.
_DIRECT_COLUMNS = (
    "id", "detector_id", "external_id", "schema_version", "detector_version", "account_external_id",
    "organization_id", "signal", "score", "observed_from", "observed_to", "request_count", "cluster_id", "evidence",
    "content_hash", "batch_id", "received_at",
)
_DIRECT_TYPES = (
    "int8", "int8", "text", "int2", "text", "text", "text", "text", "float8", "timestamptz", "timestamptz", "int8",
    "text", "bytea", "text", "int8", "timestamptz",
)
_DIRECT_COPY = f"COPY flags_flag ({', '.join(_DIRECT_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
_KEY_COPY = "COPY flags_flagkey (detector_id, external_id, flag_id, received_at) FROM STDIN (FORMAT BINARY)"
_KEY_TYPES = ("int8", "text", "int8", "timestamptz")
_NEW_IDS = "SELECT nextval((SELECT pg_get_serial_sequence('flags_flag', 'id'))) FROM generate_series(1, %s)"
_JSONB_VERSION = b"\x01"  # the binary jsonb format: a version byte, then the JSON text
# Index probes only (the key table's primary key): nothing is read from the flags.
_ANY_STORED = """
SELECT EXISTS (SELECT 1 FROM unnest(%s::bigint[], %s::text[]) AS s(detector_id, external_id)
               JOIN flags_flagkey k ON k.detector_id = s.detector_id AND k.external_id = s.external_id)
"""
# The keys not stored yet, then their flags. nextval() is taken for every staged row, as a column default would
# be under ON CONFLICT: ids have gaps, never repeats.
_INSERT = """
WITH fresh AS (
    INSERT INTO flags_flagkey (detector_id, external_id, flag_id, received_at)
    SELECT detector_id, external_id, nextval((SELECT pg_get_serial_sequence('flags_flag', 'id'))), %(now)s
    FROM flags_staging
    -- One lock order for every writer, overlapping batches cannot deadlock: the direct COPY sorts its rows by the
    -- same key in Python, whose string order is code-point order, that of the C collation.
    ORDER BY detector_id, external_id COLLATE "C"
    ON CONFLICT (detector_id, external_id) DO NOTHING
    RETURNING detector_id, external_id, flag_id
)
INSERT INTO flags_flag (id, detector_id, external_id, schema_version, detector_version, account_external_id,
    organization_id, signal, score, observed_from, observed_to, request_count, cluster_id, evidence,
    content_hash, batch_id, received_at)
SELECT fresh.flag_id, s.detector_id, s.external_id, 1, s.detector_version, s.account_external_id, s.organization_id,
    s.signal, s.score, s.observed_from, s.observed_to, s.request_count, s.cluster_id, s.evidence::jsonb,
    s.content_hash, %(batch)s, %(now)s
FROM fresh JOIN flags_staging s ON s.detector_id = fresh.detector_id AND s.external_id = fresh.external_id
"""
# The stored flag of each key found: by its primary key (id, received_at), so only its own month's partition.
_EXISTING = """
SELECT s.ord, f.content_hash = s.content_hash
FROM flags_staging s
JOIN flags_flagkey k ON k.detector_id = s.detector_id AND k.external_id = s.external_id
JOIN flags_flag f ON f.id = k.flag_id AND f.received_at = k.received_at
WHERE f.batch_id <> %(batch)s
"""
_encoder = msgspec.json.Encoder()


def _external_id_of(raw) -> str | None:
    try:
        value = msgspec.json.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):  # a deep item is named by its index only
        return None
    external_id = value.get("external_id") if isinstance(value, dict) else None
    return external_id if isinstance(external_id, str) else None


def _row(ord_: int, detector_id: int, flag: FlagV1, digest: str) -> tuple:
    return (
        ord_, detector_id, flag.external_id, flag.detector_version, flag.account_id, flag.organization_id or "",
        flag.signal, flag.score, flag.observed_from, flag.observed_to, flag.request_count, flag.cluster_id or "",
        _encoder.encode(flag.evidence) if flag.evidence is not None else None, digest,
    )


def flags_ingest(*, items: Iterable[tuple[int, bytes | msgspec.Raw]], detector: Detector | None, actor: Actor,
                 source: str = FlagBatch.Source.API) -> IngestResult:
    """Validate and store a batch of flags; answer what was created, duplicated, in conflict, rejected.

    ``items`` are (index, raw JSON) pairs: the index is what a rejection names (position in the request,
    or line number of a file). With ``detector`` set (a token's detector) every item must name it; without
    (a backfill), each item's own ``detector`` must be an active detector.
    """
    result = IngestResult()
    detectors = ({detector.slug: detector} if detector is not None
                 else {d.slug: d for d in Detector.objects.filter(active=True)})
    expected = detector.slug if detector is not None else None
    rows: list[tuple] = []
    first_seen: dict[tuple[int, str], tuple[str, int]] = {}
    for index, raw in items:
        try:
            flag = parse_flag(raw, expected_detector=expected)
            owner = detectors.get(flag.detector)
            if owner is None:
                raise ItemErrors({"detector": [f"no active detector '{flag.detector}'"]})
        except ItemErrors as exc:
            result.rejected.append({"index": index, "external_id": _external_id_of(raw), "errors": exc.errors})
            continue
        digest = hashlib.sha256(canonical_bytes(flag)).hexdigest()
        key = (owner.pk, flag.external_id)
        if key in first_seen:  # the same id twice in one batch: the first one counts
            result.duplicates += 1
            if first_seen[key][0] != digest:
                result.conflicts.append(_conflict(index, flag.external_id, f"item {first_seen[key][1]}"))
            continue
        first_seen[key] = (digest, index)
        rows.append(_row(index, owner.pk, flag, digest))
    if rows:
        _store(rows, result, detector=detector, source=source, actor=actor)
    return result


def _conflict(index: int, external_id: str, earlier: str) -> dict:
    return {"index": index, "external_id": external_id,
            "note": f"same external_id as {earlier} but different content; the earlier flag is kept unchanged"}


@transaction.atomic
def _store(rows: list[tuple], result: IngestResult, *, detector: Detector | None, source: str, actor: Actor) -> None:
    batch = FlagBatch.objects.create(detector=detector, source=source)
    now = timezone.now()
    with connection.cursor() as cursor:
        if _copy_direct(cursor, rows, batch=batch.pk, now=now):
            created, existing = len(rows), []
        else:
            created, existing = _copy_staged(cursor, rows, batch=batch.pk, now=now)
    by_ord = {row[0]: row for row in rows}
    for ord_, same in sorted(existing):
        result.duplicates += 1
        if not same:
            result.conflicts.append(_conflict(ord_, by_ord[ord_][2], "a flag stored earlier"))
    result.created += created
    result.batch_id = batch.pk
    batch.created, batch.duplicates = created, result.duplicates
    batch.conflicts, batch.rejected = len(result.conflicts), len(result.rejected)
    batch.save(update_fields=["created", "duplicates", "conflicts", "rejected"])
    record(actor=actor, action=AuditAction.FLAGS_INGESTED, target=batch, data={
        "detector": detector.slug if detector else None, "source": source, "created": created,
        "duplicates": batch.duplicates, "conflicts": batch.conflicts, "rejected": batch.rejected,
    })
    if created:
        from .tasks import grouping_request

        transaction.on_commit(grouping_request)


def _copy_direct(cursor, rows: list[tuple], *, batch: int, now) -> bool:
    """COPY the rows' keys, then the rows, when none of them is stored yet; False (nothing written) otherwise.

    Between the check and the COPY another writer may store one of them: the keys' COPY then fails on the key
    table's primary key (or, were the lock orders to cross, a deadlock) inside a savepoint, and the caller stages
    instead.
    """
    cursor.execute(_ANY_STORED, ([row[1] for row in rows], [row[2] for row in rows]))
    if cursor.fetchone()[0]:
        return False
    cursor.execute(_NEW_IDS, [len(rows)])
    ordered = sorted(rows, key=_lock_order)
    ids = [flag_id for (flag_id,) in cursor.fetchall()]
    try:
        # A savepoint: a failed COPY leaves the batch's transaction usable.
        with transaction.atomic():
            with cursor.copy(_KEY_COPY) as copy:
                copy.set_types(_KEY_TYPES)
                for flag_id, row in zip(ids, ordered, strict=True):
                    copy.write_row((row[1], row[2], flag_id, now))
            with cursor.copy(_DIRECT_COPY) as copy:
                copy.set_types(_DIRECT_TYPES)
                for flag_id, row in zip(ids, ordered, strict=True):
                    copy.write_row((
                        flag_id, row[1], row[2], 1, *row[3:12],
                        None if row[12] is None else _JSONB_VERSION + row[12], row[13], batch, now,
                    ))
    except (IntegrityError, psycopg.errors.UniqueViolation, psycopg.errors.DeadlockDetected):
        return False
    return True


def _lock_order(row: tuple) -> tuple[int, str]:
    return row[1], row[2]


def _copy_staged(cursor, rows: list[tuple], *, batch: int, now) -> tuple[int, list[tuple[int, bool]]]:
    """Stage the rows in a temporary table and insert those not stored yet; returns how many were created and,
    for each staged row already stored by an earlier batch, (its ord, whether its content is the same)."""
    cursor.execute(_STAGING_DDL)
    # Empty unless an enclosing transaction staged rows before; on an empty table cheaper than TRUNCATE.
    cursor.execute("DELETE FROM flags_staging")
    with cursor.copy(f"COPY flags_staging ({', '.join(_STAGING_COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(_STAGING_TYPES)
        for row in rows:
            copy.write_row(row)
    cursor.execute(_INSERT, {"batch": batch, "now": now})
    created = cursor.rowcount
    existing = []
    if created < len(rows):  # when every staged row was inserted, none can have been stored before
        cursor.execute(_EXISTING, {"batch": batch})
        existing = cursor.fetchall()
    return created, existing


def flags_set_aside(*, flags: Iterable, reason: str) -> list[int]:
    """Keep these ungrouped flags out of grouping for good (``FlagSetAside``: grouping skips them, the Detectors
    page lists them with the reason). For a caller that holds the flags locked and audits why in its own event
    (the Forum, when a peer withdraws the intelligence a flag came from); grouping's own poison path is
    flags.grouping. A flag already set aside keeps its first reason. Returns the flags' ids."""
    from .models import FlagSetAside

    flags = list(flags)
    FlagSetAside.objects.bulk_create([FlagSetAside(flag=f, detector_id=f.detector_id, reason=reason) for f in flags],
                                     ignore_conflicts=True)
    return [f.pk for f in flags]
