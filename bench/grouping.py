"""`python -m bench.grouping`: the CPU grouping costs per 1,000 flags, measured alone, in this process.

The stack measures (bench/main.py) run on a shared 2-core machine, where wall-clock rates vary with
whatever else runs. CPU time does not: this measures the CPU seconds grouping spends per 1,000 flags —
in Python (this process) and in PostgreSQL (its backend, read from ``/proc``) — with nothing else
running. N generated flags (bench/ingest.py) are COPYed into ``flags_flag`` of a fresh database, then
grouped with the worker's own loop (``flags.tasks.group_pending_flags``'s body: ``flags_group`` batch
after batch) by ``--groupers`` threads at once, then the audit sequencer gives the batch's events their
place in the chain. Two passes: the first opens the cases (new accounts), the second adds N more flags
for the same accounts to the cases the first opened (the steady state of a long campaign).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import cProfile
import io
import os
import pstats
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.ingest import _COPY_COLUMNS as COPY_COLUMNS
from bench.ingest import (
    ACCOUNTS,
    BenchDatabase,
    generate,
    log,
    prepare_app,
    prepare_rows,
    renamed,
    server_from_settings,
)

_TICK = os.sysconf("SC_CLK_TCK")


def _process_seconds(pid: int) -> float:
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _self_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Backend:
    """CPU seconds this thread's PostgreSQL backend (Django's connection) spends inside the block."""

    def __enter__(self) -> Backend:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            self.pid = cursor.fetchone()[0]
        self.seconds = _process_seconds(self.pid)
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = _process_seconds(self.pid) - self.seconds


class Meter:
    """Wall time, CPU seconds of this process and of the backends of the connections used inside."""

    def __init__(self):
        self.postgres = 0.0
        self._lock = threading.Lock()

    def add(self, backend: Backend) -> None:
        with self._lock:
            self.postgres += backend.seconds

    def __enter__(self) -> Meter:
        self.python, self.wall = _self_seconds(), time.monotonic()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.monotonic() - self.wall
        self.python = _self_seconds() - self.python


def _copy_flags(db: BenchDatabase, rows: list[tuple], detector_id: int) -> None:
    with db.server.connect(db.name) as conn:
        (batch,) = conn.execute(
            "INSERT INTO flags_flagbatch (detector_id, source, received_at, created, duplicates, conflicts, rejected) "
            "VALUES (%s, 'file', now(), %s, 0, 0, 0) RETURNING id", [detector_id, len(rows)]).fetchone()
    batch_at = COPY_COLUMNS.index("batch_id")
    typed = [(*row[1:batch_at], batch, *row[batch_at + 1:]) for row in rows]
    with db.server.connect(db.name) as conn:
        statement = f"COPY flags_flag ({', '.join(COPY_COLUMNS[1:])}) FROM STDIN"
        with conn.cursor() as cursor, cursor.copy(statement) as copy:
            for row in typed:
                copy.write_row(row)
        conn.commit()
    db.execute("VACUUM ANALYZE flags_flag")


class StatementTimes:
    """Wall time per SQL statement (by its first words) of the connections it wraps: with one grouper on
    an otherwise idle database that is PostgreSQL's time plus the round trip."""

    def __init__(self):
        self.seconds: collections.Counter = collections.Counter()
        self.calls: collections.Counter = collections.Counter()

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            key = " ".join(sql.split())[:90]
            self.seconds[key] += time.perf_counter() - started
            self.calls[key] += 1

    def lines(self, flags: int, top: int = 12) -> list[str]:
        per = 1000 / max(flags, 1)
        return [f"      {seconds * per * 1000:6.1f} ms  {self.calls[key]:5d}×  {key}"
                for key, seconds in self.seconds.most_common(top)]


def _group(meter: Meter, groupers: int, batch: int, statements: StatementTimes | None = None,
           *, partitioned: bool = True) -> int:
    """Group every pending flag with ``groupers`` threads, each on its own partition of the accounts (as
    the grouping tasks do), or all on all flags (``partitioned=False``, as before partitions)."""
    from django.db import connection

    from flags.grouping import Partition, flags_group

    grouped = [0] * groupers

    def grouper(index: int) -> None:
        try:
            with Backend() as backend, (connection.execute_wrapper(statements) if statements
                                        else contextlib.nullcontext()):
                after = 0
                while True:
                    run = flags_group(limit=batch, after_id=after, sequence=False,
                                      partition=Partition(index, groupers) if partitioned else None)
                    grouped[index] += run.flags
                    after = run.last_id
                    if run.taken < batch:
                        break
            meter.add(backend)
        finally:
            connection.close()

    if groupers == 1:  # in this thread (cProfile sees only the thread it is enabled in)
        grouper(0)
        return grouped[0]
    threads = [threading.Thread(target=grouper, args=(i,)) for i in range(groupers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(grouped)


def _sequence(meter: Meter) -> int:
    from django.db import connection

    from reviewapp.audit.sequencer import sequence_pending

    try:
        with Backend() as backend:
            done = sequence_pending(wait=True)
        meter.add(backend)
        return done
    finally:
        connection.close()


def _events(db: BenchDatabase) -> dict[str, int]:
    with db.server.connect(db.name, autocommit=True) as conn:
        return dict(conn.execute("SELECT action, count(*) FROM audit_auditevent GROUP BY action ORDER BY 2 DESC"))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.grouping", description=__doc__.split("\n\n")[0])
    parser.add_argument("--flags", type=int, default=20_000, help="flags per pass (default 20,000)")
    parser.add_argument("--accounts", type=int, default=ACCOUNTS, help="accounts (default 24,000)")
    parser.add_argument("--groupers", type=int, default=1, help="threads grouping at once (default 1)")
    parser.add_argument("--shared", action="store_true",
                        help="groupers share all flags (SKIP LOCKED only) instead of one partition each")
    parser.add_argument("--profile", action="store_true",
                        help="time each SQL statement and profile the Python side (cProfile, one grouper)")
    parser.add_argument("--sql", action="append", default=[],
                        help="a statement to run on the fresh database before the passes (a what-if: a storage "
                             "parameter, an index dropped); may be repeated")
    parser.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    parser.add_argument("--batch", type=int, help="flags per grouping transaction (default FLAGS_GROUP_BATCH_SIZE)")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="reviewapp-bench-grouping-"))
    server, maintenance_db = server_from_settings()
    db = BenchDatabase(server, maintenance_db, workdir)
    try:
        path = workdir / "flags.jsonl"
        generate(path, args.flags, accounts=args.accounts)
        db.create()
        detector_id, _ = prepare_app(db)
        if args.sql:
            db.execute(*args.sql)
        from django.conf import settings

        batch = args.batch or settings.FLAGS_GROUP_BATCH_SIZE
        print(f"grouping {args.flags:,} flags for {args.accounts:,} accounts per pass, {args.groupers} grouper(s), "
              f"batches of {batch:,}{', sharing all flags' if args.shared else ''}; CPU seconds per 1,000 flags "
              "(Python = this process, PostgreSQL = its backends)")
        for generation, label in ((0, "pass 1: new accounts, cases opened"), (1, "pass 2: the same accounts again")):
            source = path if generation == 0 else workdir / "again.jsonl"
            if generation:
                source.write_bytes(renamed(path.read_bytes(), generation))
            log(f"{label}: COPY into flags_flag")
            _copy_flags(db, prepare_rows(source, detector_id), detector_id)
            before = sum(_events(db).values())
            log(f"{label}: grouping")
            statements = StatementTimes() if args.profile else None
            profiler = cProfile.Profile() if args.profile else None
            with Meter() as grouping:
                if profiler:
                    profiler.enable()
                flags = _group(grouping, args.groupers, batch, statements, partitioned=not args.shared)
                if profiler:
                    profiler.disable()
            with Meter() as sequencing:
                sequenced = _sequence(sequencing)
            events = sum(_events(db).values()) - before
            per = 1000 / max(flags, 1)
            total = (grouping.python + grouping.postgres + sequencing.python + sequencing.postgres) * per
            print(f"  {label}: {flags:,} flags in {grouping.wall:.2f} s ({flags / grouping.wall:,.0f} flags/s), "
                  f"then {sequenced:,} events sequenced in {sequencing.wall:.2f} s; {events * per:.0f} events "
                  f"per 1,000 flags")
            ms = {name: seconds * per * 1000 for name, seconds in (
                ("gp", grouping.python), ("gq", grouping.postgres), ("sp", sequencing.python),
                ("sq", sequencing.postgres))}
            print(f"    CPU per 1,000 flags: grouping {ms['gp']:.0f} ms Python + {ms['gq']:.0f} ms PostgreSQL; "
                  f"sequencing {ms['sp']:.0f} ms Python + {ms['sq']:.0f} ms PostgreSQL; total {total * 1000:.0f} ms")
            if statements:
                print("    SQL statements of grouping, wall time per 1,000 flags (profiled: slower than unprofiled):")
                print("\n".join(statements.lines(flags)))
                text = io.StringIO()
                pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(18)
                print("    Python, by own time (cProfile):")
                print("\n".join("      " + line for line in text.getvalue().splitlines()[7:] if line.strip()))
        print("  events by action: " + ", ".join(f"{action} {count:,}" for action, count in _events(db).items()))
        return 0
    finally:
        from django.apps import apps

        if apps.ready:
            from django.db import connections

            connections.close_all()
        if args.keep:
            log(f"kept database {db.name}")
        else:
            db.drop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
