"""Exports (issue 11): the streaming read of reviewapp/compliance/exports/selectors.py and the console's download.
The API is test_exports_api.py, the export page test_exports_page.py (and _e2e.py), every field of every dataset
round-tripped test_exports_roundtrip.py; the 1,000,000-row measurement is ``python -m bench --mode export``."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from reviewapp.audit.models import AuditEvent
from reviewapp.audit.services import SYSTEM, Actor, record
from reviewapp.compliance.exports.selectors import AUDIT, DATASETS, csv_rows, export_count, jsonl_lines

pytestmark = pytest.mark.django_db

START, END = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)


def test_audit_rows_round_trip_in_both_formats():
    event = record(actor=SYSTEM, action="compliance.exported", data={"dataset": "audit", "note": "=1+1"})
    events = list(AuditEvent.objects.order_by("created_at", "pk"))
    lines = [json.loads(line) for line in jsonl_lines(AUDIT, START, END)]
    assert [line["id"] for line in lines] == [e.pk for e in events]
    mine = next(line for line in lines if line["id"] == event.pk)
    assert mine["data"] == {"dataset": "audit", "note": "=1+1"} and mine["action"] == "compliance.exported"
    assert datetime.fromisoformat(mine["created_at"]) == event.created_at
    rows = list(csv_rows(AUDIT, START, END))
    assert len(rows) == export_count(AUDIT, START, END) == len(events)
    assert dict(zip(AUDIT.column_names, rows[-1], strict=True))["id"] == events[-1].pk


def test_csv_cells_are_safe_against_formulas():
    event = record(actor=SYSTEM, action="compliance.exported", data={})
    rows = {row[0]: dict(zip(AUDIT.column_names, row, strict=True)) for row in csv_rows(AUDIT, START, END)}
    assert rows[event.pk]["actor"] == "reviewapp"
    # A leading "-" (or =, +, @) becomes "'-"; JSONL keeps the value as stored.
    hostile = record(actor=Actor(type="system", id="x", display="-2+3"), action="compliance.exported", data={})
    rows = {row[0]: dict(zip(AUDIT.column_names, row, strict=True)) for row in csv_rows(AUDIT, START, END)}
    assert rows[hostile.pk]["actor"] == "'-2+3"
    lines = {json.loads(line)["id"]: json.loads(line) for line in jsonl_lines(AUDIT, START, END)}
    assert lines[hostile.pk]["actor"] == "-2+3"


def test_date_range_bounds_are_start_inclusive_end_exclusive():
    event = record(actor=SYSTEM, action="compliance.exported", data={})
    assert event.pk in [row[0] for row in csv_rows(AUDIT, event.created_at, END)]
    assert event.pk not in [row[0] for row in csv_rows(AUDIT, START, event.created_at)]


@pytest.mark.parametrize("slug", sorted(DATASETS))
def test_every_dataset_reads_in_both_formats(slug):
    dataset = DATASETS[slug]
    assert len(list(csv_rows(dataset, START, END))) == len(list(jsonl_lines(dataset, START, END)))


def _seed_audit(count: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("""INSERT INTO audit_auditevent (created_at, actor_type, actor_id, actor_display, action,
                                                        target_type, target_id, data)
                          SELECT now() - g * interval '1 second', 'system', 'reviewapp', 'reviewapp',
                                 'compliance.exported', 'cases.case', g::text, jsonb_build_object('n', g)
                          FROM generate_series(1, %s) g""", [count])


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_streaming_memory_stays_bounded(fmt):
    """50,000 rows (several MB of output) pass through with a peak Python allocation far below what holding
    them would take (measured here: ~3 MB streamed; the same output joined in memory peaks at ~12 MB for CSV and
    ~29 MB for JSONL, so the 8 MB bound fails if the rows are materialised)."""
    import csv as csv_module
    import io
    import tracemalloc

    from reviewapp.compliance.exports.formats import CHUNKS

    _seed_audit(50_000)
    tracemalloc.start()
    size, lines = 0, 0
    for chunk in CHUNKS[fmt](AUDIT, START, END):
        size += len(chunk)
        lines += chunk.count("\n")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert lines >= 50_000 and size > 5_000_000
    assert peak < 8_000_000, f"peak {peak:,} bytes for {size:,} bytes of {fmt}"
    if fmt == "csv":
        text = "".join(CHUNKS["csv"](AUDIT, START, END))
        parsed = list(csv_module.reader(io.StringIO(text)))
        assert parsed[0] == AUDIT.column_names and len(parsed) == export_count(AUDIT, START, END) + 1


def test_download_streams_audits_and_is_for_compliance_only(client, make_staff):
    from django.http import StreamingHttpResponse
    from django.urls import reverse

    from reviewapp.people.roles import Role

    url = reverse("compliance:export-audit-jsonl")
    client.force_login(make_staff(Role.SENIOR_REVIEWER))
    assert client.get(url).status_code == 403
    client.force_login(make_staff(Role.COMPLIANCE_OFFICER, username="cora"))
    assert client.get(url, {"from": "2026-13-01"}).content.startswith(b"from:")
    assert client.get(url, {"from": "2026-02-01", "to": "2026-01-01"}).status_code == 400
    today = datetime.now(UTC).date().isoformat()
    response = client.get(url, {"from": today, "to": today})
    assert isinstance(response, StreamingHttpResponse) and response.status_code == 200
    lines = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    event = AuditEvent.objects.filter(action="compliance.exported").latest("pk")
    assert event.actor_display == "cora" and event.data["from"] == today and event.data["format"] == "jsonl"
    assert int(response["X-Export-Rows"]) == event.data["rows"] and event.pk in [line["id"] for line in lines]
    assert client.post(url).status_code == 405


def test_home_panel_links_every_export(client, make_staff):
    from django.urls import reverse

    from reviewapp.people.roles import Role

    client.force_login(make_staff(Role.COMPLIANCE_OFFICER))
    page = client.get(reverse("compliance:home")).content.decode()
    assert 'id="panel-exports"' in page
    for slug in DATASETS:
        assert f'href="/compliance/exports/{slug}.csv"' in page and f'href="/compliance/exports/{slug}.jsonl"' in page
