"""Backfill flags from a JSON-lines file through the same ingestion service as the API.

The file is streamed: a chunk of lines at a time goes to ``flags_ingest`` (one transaction, one batch
receipt and one audit event per chunk), so memory stays flat on files of millions of lines and a run
that stops half way can simply be started again (what was stored counts as duplicates).

Two chunks are stored at once by default, each on its own database connection: while PostgreSQL
writes one, Python validates the next. Results are reported in file order, and two chunks that share
an ``external_id`` are never in flight together, so the earlier line still wins, as it does one
chunk after another.
"""

from __future__ import annotations

import codecs
import json
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import msgspec
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections
from tqdm import tqdm

from flags.models import Detector, FlagBatch
from flags.services import IngestResult, flags_ingest
from reviewapp.audit.services import Actor

# Conflicts are counted in full; only the first few are spelled out on the terminal.
CONFLICTS_SHOWN = 10

Lines = list[tuple[int, bytes]]  # (line number, the line without its line break)


def default_rejected_path(path: Path) -> Path:
    """``flags.jsonl`` → ``flags.rejected.jsonl``; any other name gets ``.rejected.jsonl`` appended."""
    if path.suffix == ".jsonl":
        return path.with_suffix(".rejected.jsonl")
    return path.with_name(path.name + ".rejected.jsonl")


def read_chunks(path: Path, size: int) -> Iterator[tuple[Lines, int]]:
    """Non-blank lines in chunks of ``size``, each with the number of file bytes it covers."""
    lines: Lines = []
    covered = 0
    with open(path, "rb") as stream:
        for number, line in enumerate(stream, start=1):
            covered += len(line)
            if number == 1 and line.startswith(codecs.BOM_UTF8):
                line = line[len(codecs.BOM_UTF8):]
            line = line.strip()
            if not line:
                continue
            lines.append((number, line))
            if len(lines) >= size:
                yield lines, covered
                lines, covered = [], 0
    if lines or covered:
        yield lines, covered


class _ExternalId(msgspec.Struct):
    external_id: str | None = None


_external_id = msgspec.json.Decoder(_ExternalId).decode


def external_ids(lines: Lines) -> set[str]:
    """The external ids a chunk may store (a line that has none will be rejected, so it cannot clash)."""
    ids = set()
    for _, line in lines:
        try:
            ids.add(_external_id(line).external_id)
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
            continue
    ids.discard(None)
    return ids


class ChunkWorkers:
    """``jobs`` threads that each store chunks on their own database connection (closed when they stop).

    With one job the work runs in the calling thread, inside whatever transaction the caller has open.
    """

    def __init__(self, jobs: int, work: Callable[[Lines], tuple]):
        self.work = work
        self.tasks: queue.Queue = queue.Queue()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(jobs)] if jobs > 1 else []

    def __enter__(self) -> ChunkWorkers:
        for thread in self.threads:
            thread.start()
        return self

    def submit(self, lines: Lines) -> Future:
        future: Future = Future()
        if not self.threads:
            self._call(future, lines)
        else:
            self.tasks.put((future, lines))
        return future

    def _call(self, future: Future, lines: Lines) -> None:
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(self.work(lines))
            except BaseException as exc:  # handed to the main thread by future.result()
                future.set_exception(exc)

    def _run(self) -> None:
        try:
            while (task := self.tasks.get()) is not None:
                self._call(*task)
        finally:
            connections.close_all()

    def __exit__(self, *exc_info) -> None:
        if exc_info[0] is not None:  # stop: chunks not yet started are dropped (a rerun stores them)
            while not self.tasks.empty():
                future, _ = self.tasks.get_nowait()
                future.cancel()
        for _ in self.threads:
            self.tasks.put(None)
        for thread in self.threads:
            thread.join()


@dataclass
class Chunk:
    lines: Lines
    size: int
    ids: set[str]
    stored: Future


class RejectedLines:
    """Writes rejected lines with their errors as JSON lines; the file is created at the first rejection."""

    def __init__(self, path: Path):
        self.path = path
        self.count = 0
        self._file = None

    def write(self, rejection: dict, line: bytes) -> None:
        if self._file is None:
            self._file = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 — kept open across chunks
        entry = {"line": rejection["index"], "external_id": rejection["external_id"],
                 "errors": rejection["errors"], "text": line.decode("utf-8", errors="replace")}
        self._file.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self.count += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class Command(BaseCommand):
    help = (
        "Ingest detector flags from a JSON-lines file (one schema-v1 flag per line), streaming, in chunks. "
        "Prints created, duplicates, conflicts and rejected like the API; rejected lines are written with "
        "their errors to --rejected. Running the same file again creates nothing."
    )
    # Django's system checks (URLconf, every view, the admin, DRF) took a fifth of a backfill's start-up; they
    # guard the web app and `manage.py check` runs them, not a file import.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="a .jsonl file, one flag object per line")
        parser.add_argument("--detector", metavar="SLUG",
                            help="every line must name this detector (otherwise each line's own active detector)")
        parser.add_argument("--chunk", type=int, default=5000,
                            help="lines per transaction (default 5000, the API's batch limit)")
        parser.add_argument("--jobs", type=int, default=2,
                            help="chunks stored at once, each on its own database connection (default 2)")
        parser.add_argument("--rejected", type=Path, metavar="PATH",
                            help="where rejected lines go (default FILE.rejected.jsonl; created only if needed)")

    def handle(self, *args, file: Path, detector: str | None, chunk: int, jobs: int, rejected: Path | None,
               **options):
        if chunk < 1 or jobs < 1:
            raise CommandError("--chunk and --jobs must be at least 1")
        if not file.is_file():
            raise CommandError(f"{file}: no such file")
        owner = self._detector(detector)
        if connection.in_atomic_block:
            jobs = 1  # other connections cannot see the caller's open transaction, so stay inside it
        actor = Actor(type="system", id="manage.py ingest_flags", display=f"ingest_flags {file}")
        rejected_lines = RejectedLines(rejected or default_rejected_path(file))
        totals = {"lines": 0, "created": 0, "duplicates": 0, "conflicts": 0}
        shown_conflicts: list[dict] = []
        started = time.monotonic()
        bar = tqdm(total=file.stat().st_size, unit="B", unit_scale=True, desc="ingesting", file=sys.stderr,
                   disable=not sys.stderr.isatty())

        def store(lines: Lines) -> tuple[IngestResult | None, list[dict]]:
            """In a worker: the chunk's lines that are UTF-8 go to the service; the others are rejected here."""
            items, rejections = [], []
            for number, line in lines:
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as exc:
                    # JSON text is UTF-8 (RFC 8259); say where the bad byte is.
                    rejections.append({"index": number, "external_id": None, "errors": {
                        "non_field_errors": [f"the line is not valid UTF-8 (byte {exc.start})"]}})
                else:
                    items.append((number, line))
            result = None
            if items:
                result = flags_ingest(items=items, detector=owner, actor=actor, source=FlagBatch.Source.FILE)
            return result, rejections

        def finish(chunk: Chunk) -> None:
            """In file order: count the chunk's answer and write its rejected lines."""
            result, rejections = chunk.stored.result()
            totals["lines"] += len(chunk.lines)
            if result is not None:
                totals["created"] += result.created
                totals["duplicates"] += result.duplicates
                totals["conflicts"] += len(result.conflicts)
                shown_conflicts.extend(result.conflicts[: CONFLICTS_SHOWN - len(shown_conflicts)])
                rejections = rejections + result.rejected
            if rejections:
                text_of = dict(chunk.lines)
                for rejection in sorted(rejections, key=lambda r: r["index"]):
                    rejected_lines.write(rejection, text_of[rejection["index"]])
            bar.update(chunk.size)

        in_flight: deque[Chunk] = deque()
        try:
            with ChunkWorkers(jobs, store) as workers:
                for lines, size in read_chunks(file, chunk):
                    ids = external_ids(lines) if jobs > 1 else set()
                    # At most `jobs` chunks at once, and none sharing an id with this one: the earlier line wins.
                    while in_flight and (len(in_flight) >= jobs or any(ids & c.ids for c in in_flight)):
                        finish(in_flight.popleft())
                    in_flight.append(Chunk(lines, size, ids, workers.submit(lines)))
                while in_flight:
                    finish(in_flight.popleft())
        finally:
            bar.close()
            rejected_lines.close()

        elapsed = time.monotonic() - started
        rate = totals["lines"] / elapsed if elapsed > 0 else 0.0
        self.stdout.write(f"{totals['lines']} lines read from {file} in {elapsed:.2f} s ({rate:,.0f} lines/s)")
        self.stdout.write(f"created: {totals['created']}")
        self.stdout.write(f"duplicates: {totals['duplicates']}")
        self.stdout.write(f"conflicts: {totals['conflicts']}")
        for conflict in shown_conflicts:
            self.stdout.write(f"  line {conflict['index']} ({conflict['external_id']}): {conflict['note']}")
        if totals["conflicts"] > len(shown_conflicts):
            self.stdout.write(f"  … and {totals['conflicts'] - len(shown_conflicts)} more")
        where = f" (each with its errors in {rejected_lines.path})" if rejected_lines.count else ""
        self.stdout.write(f"rejected: {rejected_lines.count}{where}")

    def _detector(self, slug: str | None) -> Detector | None:
        if slug is None:
            return None
        detector = Detector.objects.filter(slug=slug).first()
        if detector is None:
            raise CommandError(f"no detector '{slug}' (create it with: manage.py detector_token {slug})")
        if not detector.active:
            raise CommandError(f"detector '{slug}' is inactive")
        return detector
