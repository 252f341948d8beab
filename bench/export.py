"""`python -m bench.export`: streaming 1,000,000 rows of an export through the console's real download, against
PostgreSQL's own COPY of the same rows, in the same run: rows per second and the process's peak RSS growth.

A fresh database (bench/ingest.py's BenchDatabase), migrated. ``--rows`` audit events (default 1,000,000) are
written in one SQL statement (``generate_series``, the secondary indexes built after): one a second from
2026-01-01 00:00 UTC, sequenced and hashed like the chain's (seq, prev_hash, hash of 64 hex), actors, actions and
targets from small sets, and a JSON payload of about 120 bytes. Then, for CSV and for JSONL:

baseline  ``COPY (<the export's own query>) TO STDOUT`` through psycopg (FORMAT csv with a header for CSV, text
          for JSONL), every block read and counted: the export's SQL, formatted by PostgreSQL, with nothing of
          Django, Python's csv or HTTP in the way. (``selectors.csv_queryset`` / ``jsonl_queryset``.)
download  GET /compliance/exports/audit.<fmt>?from=2026-01-01&to=… with Django's test client as a signed-in
          compliance officer: the whole middleware stack, the view, the audited count, the server-side cursor
          and the chunked StreamingHttpResponse, every chunk consumed and its lines counted.

Each measure ``--rounds`` times (default 2), interleaved; the medians. Memory: before each measure the process's
peak RSS is reset to its current RSS (``/proc/self/clear_refs`` 5); the growth is VmHWM after minus VmRSS before
(the largest of the rounds). Wall-clock on a shared machine: read the ratios. Goals are printed, never failing.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.forum_matching import secondary_indexes
from bench.ingest import BenchDatabase, log, manage, server_from_settings

ROWS = 1_000_000
FIRST_DAY = "2026-01-01"
MEMORY_GOAL_MB = 64  # peak RSS growth of the download: constant memory (a materialised 1M-row export is ~250 MB)
PASSWORD = "bench export password 1"  # noqa: S105 — the benchmark's own throwaway officer
ROUNDS = 2  # each measure, interleaved: COPY csv, download csv, COPY jsonl, download jsonl; medians


def _seed(db: BenchDatabase, rows: int) -> None:
    """``rows`` audit events in one statement, as the trail holds them: sequenced, hashed, one a second. Loaded
    without the table's secondary indexes, built again after (as a bulk load does: about 3x faster here)."""
    drop, create = secondary_indexes(("audit_auditevent",))
    db.execute(*drop)
    db.execute(
        f"""INSERT INTO audit_auditevent (seq, created_at, actor_type, actor_id, actor_display, action, target_type,
                                          target_id, data, prev_hash, hash)
            SELECT g, timestamptz '{FIRST_DAY} 00:00:00+00' + g * interval '1 second',
                   'user', (g % 40)::text, 'reviewer-' || (g % 40),
                   (ARRAY['case.claimed', 'decision.recorded', 'decision.approved', 'evidence.viewed',
                          'appeal.filed'])[1 + g % 5],
                   'cases.case', (g / 3)::text,
                   jsonb_build_object('case', g / 3, 'clauses', jsonb_build_array('T-' || (1 + g % 3)),
                                      'action', 'suspend', 'reason', 'Template share 94% across 1,200 prompts, "c-'
                                      || (g % 120) || '".'),
                   CASE WHEN g > 1 THEN md5((g - 1)::text) || md5('h' || (g - 1)) END,
                   md5(g::text) || md5('h' || g)
            FROM generate_series(1, {rows}) g""",
        *create,
        "VACUUM ANALYZE audit_auditevent",
    )


def _status_kb(field: str) -> int:
    return int(re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M).group(1))


@dataclass
class Measure:
    rows: int
    seconds: float
    size: int  # bytes
    rss_growth_kb: int

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


class PeakRss:
    """Peak RSS growth over a ``with`` block: VmHWM after, less VmRSS before (the peak reset at the start)."""

    def __enter__(self):
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux 4.0+)
        self.before = _status_kb("VmRSS")
        return self

    def __exit__(self, *exc):
        self.growth_kb = _status_kb("VmHWM") - self.before


def measure_copy(fmt: str, end_day: str) -> Measure:
    """PostgreSQL formats and sends the export's own query; psycopg reads every block."""
    from datetime import UTC, datetime, timedelta

    from django.db import connection

    from reviewapp.compliance.exports.selectors import AUDIT, csv_queryset, jsonl_queryset

    start = datetime.fromisoformat(FIRST_DAY).replace(tzinfo=UTC)
    end = datetime.fromisoformat(end_day).replace(tzinfo=UTC) + timedelta(days=1)
    queryset = (csv_queryset if fmt == "csv" else jsonl_queryset)(AUDIT, start, end)
    sql, params = queryset.query.sql_with_params()
    options = "(FORMAT csv, HEADER)" if fmt == "csv" else ""
    connection.ensure_connection()
    size = lines = 0
    with PeakRss() as peak:
        started = time.perf_counter()
        with connection.connection.cursor() as cursor, cursor.copy(f"COPY ({sql}) TO STDOUT {options}",
                                                                   params) as copy:
            for block in copy:
                size += len(block)
                lines += bytes(block).count(b"\n")
        seconds = time.perf_counter() - started
    return Measure(lines - (fmt == "csv"), seconds, size, peak.growth_kb)


def measure_download(client, fmt: str, end_day: str) -> Measure:
    """The console's download, consumed chunk by chunk; its rows are the lines (the header aside)."""
    size = lines = 0
    with PeakRss() as peak:
        started = time.perf_counter()
        response = client.get(f"/compliance/exports/audit.{fmt}", {"from": FIRST_DAY, "to": end_day},
                              HTTP_HOST="localhost")
        assert response.status_code == 200, response.status_code
        for chunk in response.streaming_content:
            size += len(chunk)
            lines += chunk.count(b"\n")
        response.close()
        seconds = time.perf_counter() - started
    rows = lines - (fmt == "csv")
    assert rows == int(response["X-Export-Rows"]), (rows, response["X-Export-Rows"])
    return Measure(rows, seconds, size, peak.growth_kb)


def _summary(measures: list[Measure]) -> dict:
    rates = [m.rate for m in measures]
    return {"rate": statistics.median(rates), "runs": " ".join(f"{r / 1000:.0f}k" for r in rates),
            "mb": measures[0].size / 1e6, "rss_mb": max(m.rss_growth_kb for m in measures) / 1024}


def run(rows: int = ROWS, rounds: int = ROUNDS) -> list[str]:
    """Measure in a fresh database of its own; the report's lines."""
    from datetime import date, timedelta

    workdir = Path(tempfile.mkdtemp(prefix="reviewapp-bench-export-"))
    server, maintenance_db = server_from_settings()
    db = BenchDatabase(server, maintenance_db, workdir)
    results: dict[str, dict[str, list[Measure]]] = {fmt: {"copy": [], "download": []} for fmt in ("csv", "jsonl")}
    end_day = (date.fromisoformat(FIRST_DAY) + timedelta(seconds=rows)).isoformat()
    try:
        db.create()
        env = db.env()
        manage(env, "migrate", "--verbosity", "0", "--skip-checks")
        os.environ.update(env)
        import django

        django.setup()
        from django.test import Client

        from reviewapp.audit.services import SYSTEM
        from reviewapp.people.roles import Role
        from reviewapp.people.services import staff_create

        log(f"{rows:,} audit events in one INSERT … SELECT generate_series")
        started = time.perf_counter()
        _seed(db, rows)
        log(f"written in {time.perf_counter() - started:.1f} s")
        officer, _ = staff_create(actor=SYSTEM, username="bench-export", role=Role.COMPLIANCE_OFFICER,
                                  password=PASSWORD)
        client = Client()
        client.force_login(officer)
        for fmt in ("csv", "jsonl"):  # warm: the URL conf, the view's imports, the session (not the export's RSS)
            b"".join(client.get(f"/compliance/exports/audit.{fmt}", {"from": "2025-12-31", "to": "2025-12-31"},
                                HTTP_HOST="localhost").streaming_content)
        for round_ in range(1, rounds + 1):
            for fmt in ("csv", "jsonl"):
                log(f"round {round_}/{rounds}, {fmt}: COPY (the export's query) TO STDOUT through psycopg")
                copy = measure_copy(fmt, end_day)
                log(f"round {round_}/{rounds}, {fmt}: the console's download through Django's test client")
                download = measure_download(client, fmt, end_day)
                assert copy.rows == download.rows == rows, (copy.rows, download.rows, rows)
                results[fmt]["copy"].append(copy)
                results[fmt]["download"].append(download)
    finally:
        from django.apps import apps

        if apps.ready:
            from django.db import connections

            connections.close_all()
        db.drop()

    lines = [f"Exports: {rows:,} audit events streamed through the console's download (GET /compliance/exports/"
             f"audit.<fmt>, Django's test client, DEBUG=0); ratio = its rate / the rate of PostgreSQL's COPY of the "
             f"export's own query through psycopg; medians of {rounds} interleaved rounds; RSS = the process's peak "
             "RSS growth during the measure (the largest of the rounds):"]
    for fmt, measures in results.items():
        copy, download = (_summary(measures[kind]) for kind in ("copy", "download"))
        verdict = "met" if download["rss_mb"] < MEMORY_GOAL_MB else "MISSED"
        lines.append(f"  {fmt.upper():<5} download {download['rate']:>9,.0f} rows/s ({download['runs']}), "
                     f"{download['mb']:,.0f} MB, RSS +{download['rss_mb']:.1f} MB   COPY {copy['rate']:>9,.0f} rows/s "
                     f"({copy['runs']}), RSS +{copy['rss_mb']:.1f} MB   ratio {download['rate'] / copy['rate']:.1%}   "
                     f"RSS goal < {MEMORY_GOAL_MB} MB (constant memory): {verdict}")
    lines.append(f"  (a materialised export would hold its whole size in memory at once: "
                 f"~{results['csv']['download'][0].size / 1e6:,.0f} MB of CSV, "
                 f"~{results['jsonl']['download'][0].size / 1e6:,.0f} MB of JSONL)")
    return lines


def print_report(rows: int = ROWS, rounds: int = ROUNDS) -> int:
    """For `make bench` (bench/main.py): this benchmark in a process of its own, its report printed."""
    from bench.stack import print_subprocess_report

    return print_subprocess_report("Exports", "bench.export", "--rows", str(rows), "--rounds", str(rounds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS, help="audit events to export (default 1,000,000)")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"rounds of each measure (default {ROUNDS})")
    args = parser.parse_args()
    print("\n".join(run(args.rows, args.rounds)))


if __name__ == "__main__":
    main()
