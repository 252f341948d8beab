"""Write the statements of reasons of a period as DSA Transparency Database batches, one JSON file each."""

import json
import sys
from datetime import UTC, datetime, time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_date, parse_datetime
from tqdm import tqdm

from reviewapp.cases.statements import DsaExportReport, dsa_batches, statements_issued_between
from reviewapp.policy.dsa_rules import BATCH_MAX


def moment(value: str) -> datetime:
    """``YYYY-MM-DD`` (midnight UTC) or an RFC 3339 timestamp with its offset."""
    day = parse_date(value) if len(value) == 10 else None
    parsed = datetime.combine(day, time(), tzinfo=UTC) if day else parse_datetime(value)
    if parsed is None or parsed.tzinfo is None:
        raise ValueError(f"{value!r}: a date YYYY-MM-DD or a timestamp with its offset")
    return parsed


class Command(BaseCommand):
    help = (
        "Export the statements of reasons issued in [--since, --until) as bodies of the DSA Transparency "
        f"Database's POST /api/v1/statements (at most {BATCH_MAX} statements each), one JSON file per batch "
        "in --out. Every body passes our transcription of the Commission's rules. Warnings are not "
        "reported; a statement the rules refuse is left out, listed in refused.json, and the command "
        "exits 1."
    )

    def add_arguments(self, parser):
        parser.add_argument("--since", type=moment, help="first issue time included (YYYY-MM-DD or RFC 3339)")
        parser.add_argument("--until", type=moment, help="issue time excluded (YYYY-MM-DD or RFC 3339)")
        parser.add_argument("--out", type=Path, required=True, help="directory for the batch files")
        parser.add_argument("--batch-size", type=int, default=BATCH_MAX, help=f"1 to {BATCH_MAX} (default)")

    def handle(self, *args, since, until, out: Path, batch_size: int, **options):
        if not 1 <= batch_size <= BATCH_MAX:
            raise CommandError(f"--batch-size must be 1 to {BATCH_MAX}")
        if since and until and since >= until:
            raise CommandError("--since must be before --until")
        out.mkdir(parents=True, exist_ok=True)
        if any(out.glob("dsa-statements-*.json")):
            raise CommandError(f"{out} already holds batch files: choose an empty directory")
        statements = statements_issued_between(since, until)
        report = DsaExportReport()
        bar = tqdm(total=statements.count(), unit=" statements", desc="exporting", file=sys.stderr,
                   disable=not sys.stderr.isatty())

        def counted(rows):
            for row in rows:
                bar.update(1)
                yield row

        for body in dsa_batches(counted(statements.iterator(chunk_size=500)), report=report, size=batch_size):
            path = out / f"dsa-statements-{report.batches:04d}.json"
            path.write_text(json.dumps(body, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        bar.close()
        self.stdout.write(f"{report.exported} statements in {report.batches} batch files in {out}; "
                          f"{len(report.not_reported)} not reportable (warnings); {len(report.refused)} refused")
        if report.refused:
            (out / "refused.json").write_text(json.dumps(report.refused, indent=1) + "\n", encoding="utf-8")
            raise CommandError(f"{len(report.refused)} statements break the Transparency Database's rules: "
                               f"see {out / 'refused.json'}")
