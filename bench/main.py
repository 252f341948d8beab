"""`make bench`: flag ingestion, grouping and review, as ratios to a raw COPY measured in the same run.

One run, one fresh database, the same N generated flags (default 100,000 for 24,000 accounts, the
scenario of issue 8) for every method. Three parts, all by default (``--mode``):

isolated  gunicorn alone (``--workers``, no Celery worker), as the benchmark always measured: HTTP
          ingestion and ``ingest_flags``, ``--rounds`` times interleaved with the COPY, medians.
stack     the real stack, started the way `make run` starts it (bench/stack.py): Celery worker and
          beat, gunicorn with make run's workers, the demo's receiver and SMTP sink. Measured once each:
          1. HTTP ingestion while the worker groups (4 clients, 1,000 flags a request);
          2. flag to case: from the first post until the last of those flags belongs to a case;
          3. ``ingest_flags`` of N fresh flags end to end while the worker groups them;
          4. the same HTTP ingestion with the worker not consuming the ingest queue (no grouping), and
             the ratio of 1 to it;
          5. decisions per second through the API with 1, 4 and 8 reviewers (bench/review.py), with
             nothing else running and while 4 clients keep posting flags and the worker groups them.
forum     Forum matching with 10,000 and 1,000,000 local accounts and the ratio, goal "flat as local
          accounts grow" (bench/forum_matching.py, its own database; part of "all" too).
scale     claim-next with 8 claimers, the queue, case, campaign, audit-explorer and decision-register pages at
          10,000, 100,000 and 1,000,000 open cases (and flags), p95 as ratios to the smallest size, and verify_audit
          over 1,000,000 events as a ratio to one bare read-and-SHA-256 of the same rows (bench/scale.py, its own
          database; part of "all" too; ``--scale-sizes``, ``--scale-quick``).
export    1,000,000 audit events streamed through the console's export download, CSV and JSONL: rows/s and
          peak RSS growth, as ratios to PostgreSQL's COPY of the export's own query (bench/export.py, its own
          database; part of "all" too).

The raw COPY (a) is measured once per isolated round and once under the stack (idle); the baseline is
the median of all of them. Nothing asserts on time: a missed goal is printed, never fails the run.
``--profile`` attaches py-spy to the worker during flag-to-case and samples what the database sessions
wait on; the summary goes to test-artifacts/bench/. ``--memory`` measures the peak RSS of
``ingest_flags`` on 1,000,000 flags instead.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import platform
import re
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.export import print_report as print_export
from bench.forum_matching import print_report as print_forum_matching
from bench.ingest import (
    ACCOUNTS,
    ROOT,
    BackgroundIngest,
    BenchDatabase,
    WebServer,
    batches,
    free_port,
    generate,
    log,
    measure_copy,
    measure_copy_into_flags,
    measure_http,
    prepare_app,
    prepare_rows,
    renamed,
    run_ingest_flags,
    server_from_settings,
    warm_up,
)
from bench.scale import print_report as print_scale

GOALS = {
    "http": 0.25,  # HTTP ingestion while grouping runs, of raw COPY
    "flag_to_case": 0.10,  # first post until the last flag is in a case, of raw COPY
    "ingest_flags": 0.35,  # the backfill end to end while the worker groups (the earlier 50 % is withdrawn)
    "with_vs_without": 0.80,  # HTTP ingestion with grouping running, of the same without grouping
}
MEMORY_GOAL_MB = 300
MEMORY_FLAGS = 1_000_000
ARTIFACTS = ROOT / "test-artifacts" / "bench"


# --- Report -------------------------------------------------------------------------------------------

def machine() -> str:
    cpus = os.cpu_count() or 0
    memory = ""
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        memory = f", {kb / 1024 / 1024:.0f} GiB"
    except (OSError, AttributeError):
        pass
    load = ""
    with contextlib.suppress(OSError):
        load = f", load {os.getloadavg()[0]:.1f}"
    return f"{cpus} CPUs{memory}{load}, {platform.system()} {platform.machine()}, Python {platform.python_version()}"


def server_version(db: BenchDatabase) -> str:
    with db.server.connect(db.name) as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


@dataclass
class Line:
    measure: str
    rate: float | None  # per second
    unit: str = "flags/s"
    ratio: float | None = None
    goal: float | None = None
    note: str = ""
    runs: str = ""

    def verdict(self) -> str:
        if self.goal is None or self.ratio is None:
            return "-"
        return "met" if self.ratio >= self.goal else "MISSED"


def print_table(title: str, lines: list[Line]) -> None:
    print(title)
    width = max(len(line.measure) for line in lines) + 2
    print(f"  {'measure':<{width}} {'rate':>18}  {'ratio':>7}  {'goal':>7}  {'':<7} notes")
    for line in lines:
        rate = f"{line.rate:,.0f} {line.unit}" if line.rate is not None else "-"
        if line.rate is not None and line.rate < 100:
            rate = f"{line.rate:,.1f} {line.unit}"
        ratio = f"{line.ratio:.1%}" if line.ratio is not None else "-"
        goal = f"≥ {line.goal:.0%}" if line.goal is not None else "-"
        notes = "; ".join(part for part in (line.note, line.runs) if part)
        print(f"  {line.measure:<{width}} {rate:>18}  {ratio:>7}  {goal:>7}  {line.verdict():<7} {notes}")


def rate_line(measure: str, count: int, runs: list[float], baseline: float, goal: float | None = None,
              note: str = "") -> Line:
    rates = [count / seconds for seconds in runs]
    rate = statistics.median(rates)
    spread = "runs: " + " ".join(f"{r / 1000:.1f}k" for r in rates) if len(rates) > 1 else ""
    return Line(measure, rate, ratio=rate / baseline, goal=goal, note=note, runs=spread)


# --- The isolated part: gunicorn alone ------------------------------------------------------------------

def run_isolated(args, db: BenchDatabase, token: str, path: Path, rows: list[tuple], bodies: list[bytes],
                 count: int, runs: dict[str, list[float]], workdir: Path) -> None:
    created, replayed = {"created": count, "rejected": 0}, {"created": 0, "duplicates": count}
    with WebServer(db.env(), args.workers, workdir / "gunicorn-isolated.log") as web:
        warm_up(web.port, web.workers, token, path)
        for round_ in range(1, args.rounds + 1):
            tag = f"isolated round {round_}/{args.rounds}"
            log(f"{tag}: (a) COPY into a bare table")
            runs["copy"].append(measure_copy(db, rows))
            log(f"{tag}: HTTP, {len(bodies)} requests of {args.batch:,} ({args.workers} gunicorn workers, "
                f"{args.clients} client threads, no Celery worker)")
            runs["http"].append(measure_http(db, web.port, token, bodies, clients=args.clients,
                                             expected=count).seconds)
            log(f"{tag}: COPY straight into flags_flag")
            runs["schema"].append(measure_copy_into_flags(db, rows))
            log(f"{tag}: manage.py ingest_flags, then again (a replay), then --jobs 1")
            seconds, own_seconds, _ = run_ingest_flags(db, path, "--chunk", str(args.chunk), expect=created)
            runs["file"].append(seconds)
            runs["file_own"].append(own_seconds)
            runs["replay"].append(run_ingest_flags(db, path, "--chunk", str(args.chunk), expect=replayed)[0])
            db.execute("TRUNCATE flags_flag, flags_flagkey CASCADE")
            runs["file1"].append(run_ingest_flags(db, path, "--chunk", str(args.chunk), "--jobs", "1",
                                                  expect=created)[0])
            db.execute("TRUNCATE flags_flag, flags_flagkey CASCADE")


def isolated_lines(args, count: int, runs: dict[str, list[float]], baseline: float) -> list[Line]:
    return [
        rate_line(f"HTTP API, {args.batch:,}/request, {args.workers} gunicorn workers", count, runs["http"], baseline,
                  note="context (goal is under the stack)"),
        rate_line("ingest_flags end to end (--jobs 2)", count, runs["file"], baseline,
                  note="context (goal is under the stack)"),
        rate_line("COPY straight into flags_flag (its indexes)", count, runs["schema"], baseline,
                  note="the schema's ceiling"),
        rate_line("ingest_flags, its own time (no start-up)", count, runs["file_own"], baseline),
        rate_line("ingest_flags --jobs 1", count, runs["file1"], baseline),
        rate_line("ingest_flags replay (all duplicates)", count, runs["replay"], baseline),
    ]


# --- The real stack -----------------------------------------------------------------------------------

@dataclass
class StackResults:
    without: list[float] | None = None  # seconds, HTTP with no grouping (before 1 and after 3)
    with_: float = 0.0  # seconds, HTTP while grouping
    to_case: float = 0.0  # seconds, first post until no flag is pending
    to_case_left: int = 0  # flags still pending at the timeout
    pending_at_last_post: int = 0  # flags without a case when the last post of 1 was answered
    backfill: float = 0.0  # seconds, ingest_flags end to end
    backfill_to_case: float = 0.0
    backfill_left: int = 0
    quiet: dict | None = None  # reviewers -> ReviewRun
    loaded: dict | None = None
    background_rate: float = 0.0
    background_pending: int = 0
    web_workers: int = 0
    web_threads: int = 1
    profiles: list[Path] | None = None
    cpu: list[tuple[str, str]] | None = None  # (measure, who used the cores)
    cpu_per_flag: list[str] | None = None  # CPU milliseconds per 1,000 flags of the stack's parts
    sequenced_after: float = 0.0  # seconds from the last flag in a case until every audit event was sequenced


_STACK_PARTS = ("web", "worker", "beat", "PostgreSQL (this database's backends)")


def cpu_ms_per_1000(meters: list, flags: int, parts: tuple[str, ...] = _STACK_PARTS) -> tuple[float, dict[str, float]]:
    """CPU milliseconds the stack's ``parts`` spent per 1,000 flags over the meters' windows, and by part."""
    by_part: collections.Counter = collections.Counter()
    for meter in meters:
        for role, cores in meter.cores().items():
            if role in parts:
                by_part[role] += cores * meter.seconds * 1000 * 1000 / max(flags, 1)
    return sum(by_part.values()), dict(by_part.most_common())


def _by_part(parts: dict[str, float]) -> str:
    return ", ".join(f"{role.split(' (')[0]} {ms:.0f}" for role, ms in parts.items() if ms >= 0.5)


def run_stack(args, db: BenchDatabase, token: str, path: Path, rows: list[tuple], bodies: list[bytes],
              count: int, runs: dict[str, list[float]], workdir: Path) -> StackResults:
    from bench.review import Reviewer, decisions_per_second, reviewers_create
    from bench.stack import CpuMeter, PendingWatch, RealStack, WorkerProfile, purge_queues

    results = StackResults()
    levels = sorted({int(n) for n in args.reviewers.split(",") if n.strip()})
    people = reviewers_create(max(levels), prefix=f"bench{os.getpid()}") if levels else []
    purge_queues()  # what the isolated part queued with no worker to take it
    stack = RealStack(free_port(), workdir, node=f"bench{os.getpid()}", web_workers=args.stack_web_workers)
    results.web_workers = stack.stack.web_workers
    results.web_threads = stack.stack.web_threads
    watch = PendingWatch(db)
    try:
        log(f"starting the real stack ({', '.join(stack.commands)}); the worker leaves the ingest queue alone")
        stack.start(ingest=False)
        warm_up(stack.port, stack.stack.web_workers, token, path)
        # Three times: one COPY on a machine that had just started put the baseline at 120,000 rows/s where two
        # quiet runs before had 208,000 and 225,000; the median of three is steadier.
        log("stack: (a) COPY into a bare table (stack idle), three times")
        for _ in range(3):
            runs["copy"].append(measure_copy(db, rows))
            runs["copy_stack"].append(runs["copy"][-1])

        results.without, results.profiles, results.cpu, results.cpu_per_flag = [], [], [], []
        without_meters: list = []

        def cpu_meter():
            if CpuMeter.available():
                return CpuMeter(db, {name: process.pid for name, process in stack.processes.items()})
            return contextlib.nullcontext()

        def cpu_note(label: str, meter) -> None:
            if isinstance(meter, CpuMeter):
                results.cpu.append((label, meter.line()))

        def without_grouping(tag: str) -> None:
            log(f"stack 4 ({tag}): HTTP ingestion, no grouping (worker not consuming the ingest queue)")
            with cpu_meter() as meter:
                results.without.append(measure_http(db, stack.port, token, bodies, clients=args.clients,
                                                    expected=count).seconds)
            cpu_note(f"4, without grouping ({tag})", meter)
            if isinstance(meter, CpuMeter):
                without_meters.append(meter)
            db.execute("TRUNCATE flags_flag, flags_flagkey CASCADE")
            stack.stop_worker()
            purge_queues()
            stack.start_worker(ingest=True)

        without_grouping("before 1")

        log("stack 1+2: HTTP ingestion while the worker groups; then until the last flag is in a case")
        profile = WorkerProfile(db, stack.worker_pid(), workdir) if args.profile else None
        if profile:
            profile.start()
        with cpu_meter() as ingesting:
            run = measure_http(db, stack.port, token, bodies, clients=args.clients, expected=count)
        cpu_note("1, HTTP ingestion while grouping runs", ingesting)
        results.pending_at_last_post = watch.count()
        with cpu_meter() as grouping:
            done, results.to_case_left = watch.wait_empty(timeout=args.group_timeout, stack=stack)
            # The CPU of grouping includes sequencing its audit events, which follows the last batch's commit.
            results.sequenced_after = watch.wait_sequenced(timeout=60)
        cpu_note("2, after the last post until the last flag is in a case and its audit events are sequenced",
                 grouping)
        if isinstance(grouping, CpuMeter):
            # What a flag costs, in CPU time (which a busy shared machine changes far less than rates).
            grouped = results.pending_at_last_post - results.to_case_left
            total, parts = cpu_ms_per_1000([ingesting, grouping], count - results.to_case_left)
            results.cpu_per_flag.append(
                f"flag to case (1 and 2), the whole stack: {total:.0f} ms per 1,000 flags ({_by_part(parts)})")
            total, parts = cpu_ms_per_1000([grouping], grouped, ("worker", "beat",
                                                                  "PostgreSQL (this database's backends)"))
            results.cpu_per_flag.append(
                f"grouping alone (2: the {grouped:,} flags still pending after the last post, and sequencing their "
                f"audit events, done {results.sequenced_after:.1f} s after the last flag was in a case): "
                f"{total:.0f} ms per 1,000 flags ({_by_part(parts)})")
        results.with_ = run.seconds
        results.to_case = done - run.first_post
        if profile:
            profile.stop()
            results.profiles.append(write_profile(profile, f"{results.to_case:.1f} s of flag-to-case"))

        log("stack 3: manage.py ingest_flags of fresh flags while the worker groups them")
        if results.to_case_left:
            log(f"  ({results.to_case_left:,} flags of step 2 still without a case: the worker is still busy)")
        backfill = workdir / "backfill.jsonl"
        backfill.write_bytes(renamed(path.read_bytes(), 1))
        started = time.monotonic()
        with cpu_meter() as meter:
            results.backfill = run_ingest_flags(db, backfill, "--chunk", str(args.chunk),
                                                expect={"created": count, "rejected": 0})[0]
        cpu_note("3, ingest_flags while the worker groups", meter)
        done, results.backfill_left = watch.wait_empty(timeout=args.group_timeout, stack=stack)
        results.backfill_to_case = done - started

        # The "without" run again, after the "with" run (a busy moment of a shared machine hits both).
        stack.stop_worker()
        stack.start_worker(ingest=False)
        without_grouping("after 3")

        if levels:
            reviewers = [Reviewer(stack.port, username, password) for username, password in people]
            for reviewer in reviewers:
                reviewer.login()
            results.quiet, results.loaded = {}, {}
            for level in levels:
                log(f"stack 5: {level} reviewer(s) deciding for {args.review_seconds:g} s, nothing else running")
                profile = None
                if args.profile and level == max(levels):
                    profile = WorkerProfile(db, stack.processes["web"].pid, workdir, name="web",
                                            task="WSGIHandler.__call__", what="the web workers' time")
                    profile.start()
                results.quiet[level] = decisions_per_second(reviewers[:level], seconds=args.review_seconds)
                if profile:
                    profile.stop()
                    results.profiles.append(write_profile(
                        profile, f"{args.review_seconds:g} s of {level} reviewers deciding, nothing else running",
                        name="web"))
            log(f"stack 5: the same while {args.clients} clients post flags and the worker groups them")
            with BackgroundIngest(stack.port, token, bodies, clients=args.clients) as background:
                time.sleep(2)  # ingestion and grouping under way
                for level in levels:
                    log(f"stack 5: {level} reviewer(s), under load")
                    with cpu_meter() as meter:
                        results.loaded[level] = decisions_per_second(reviewers[:level],
                                                                     seconds=args.review_seconds)
                    if level == max(levels):
                        cpu_note(f"5, {level} reviewers while ingestion and grouping run", meter)
            results.background_rate = background.created / background.seconds
            results.background_pending = watch.count()
        if without_meters:
            total, parts = cpu_ms_per_1000(without_meters, count * len(without_meters))
            results.cpu_per_flag.append(
                f"ingestion without grouping (4): {total:.0f} ms per 1,000 flags ({_by_part(parts)})")
        stack.check_alive()
    finally:
        watch.close()
        stack.stop()
        purge_queues()
    return results


def write_profile(profile, window: str, *, name: str = "worker") -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = ARTIFACTS / f"profile-{stamp}-{name}.txt"
    target.write_text(profile.summary(window))
    if profile.raw.exists():
        shutil.copy(profile.raw, ARTIFACTS / f"profile-{stamp}-{name}.pyspy-raw.txt")
    log(f"profile summary: {target}")
    return target


def stack_lines(args, count: int, r: StackResults, baseline: float) -> list[Line]:
    lines = [
        Line(f"1. HTTP ingestion while grouping runs ({args.clients} clients, {args.batch:,}/request, "
             f"gunicorn {r.web_workers} processes × {r.web_threads} threads)", count / r.with_,
             ratio=count / r.with_ / baseline, goal=GOALS["http"]),
        Line("2. flag to case (first post until the last flag is in a case)",
             (count - r.to_case_left) / r.to_case, ratio=(count - r.to_case_left) / r.to_case / baseline,
             goal=GOALS["flag_to_case"],
             note=f"{r.to_case:.1f} s; {r.pending_at_last_post:,} without a case at the last answer of 1"
                  + (f"; TIMED OUT, {r.to_case_left:,} still pending" if r.to_case_left else "")),
        Line("3. ingest_flags backfill end to end while the worker groups", count / r.backfill,
             ratio=count / r.backfill / baseline, goal=GOALS["ingest_flags"],
             note=f"its flags all in cases {r.backfill_to_case:.1f} s after its start"
                  + (f" (TIMED OUT, {r.backfill_left:,} pending)" if r.backfill_left else "")),
        rate_line("4. HTTP ingestion without grouping (worker off the ingest queue)", count, r.without, baseline,
                  note="median of a run before 1 and one after 3"),
        Line("4. ingestion with grouping ÷ without", None,
             ratio=(count / r.with_) / statistics.median(count / seconds for seconds in r.without),
             goal=GOALS["with_vs_without"], note="ratio = rate of 1 ÷ rate without grouping"),
    ]
    for level in sorted(r.loaded or {}):
        loaded, quiet = r.loaded[level], r.quiet[level]
        lines.append(Line(f"5. decisions, {level} reviewer(s), while ingestion and grouping run", loaded.rate,
                          unit="dec/s", ratio=loaded.rate / quiet.rate if quiet.rate else None,
                          note=f"ratio = to nothing else running; {loaded.decisions} decisions; {loaded.latencies()}"))
    for level in sorted(r.quiet or {}):
        quiet = r.quiet[level]
        lines.append(Line(f"   context: decisions, {level} reviewer(s), nothing else running", quiet.rate,
                          unit="dec/s", note=f"{quiet.decisions} decisions; {quiet.latencies()}"))
    if r.loaded:
        lines.append(Line("   context: the background ingestion during 5", r.background_rate,
                          ratio=r.background_rate / baseline,
                          note=f"{r.background_pending:,} flags without a case when it stopped"))
    return lines


# --- Main ---------------------------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--flags", type=int, help="how many flags (default 100,000; 1,000,000 with --memory)")
    parser.add_argument("--accounts", type=int, default=ACCOUNTS, help="accounts the flags are about (default 24,000)")
    parser.add_argument("--mode", choices=("all", "isolated", "stack", "forum", "export", "scale"), default="all",
                        help="isolated: gunicorn alone (no worker); stack: the real stack; forum: Forum matching "
                             "at 10,000 and 1,000,000 local accounts only; export: streaming 1,000,000 rows of an "
                             "export only; scale: the hot paths at 10k, 100k and 1M open cases only; all: every part "
                             "(default)")
    parser.add_argument("--memory", action="store_true", help="measure peak RSS of ingest_flags only")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers of the isolated part (default 4)")
    parser.add_argument("--stack-web-workers", type=int,
                        help="gunicorn workers of the real stack, for a what-if (default: what make run starts)")
    parser.add_argument("--clients", type=int, default=4, help="client threads posting batches (default 4)")
    parser.add_argument("--batch", type=int, default=1000, help="flags per HTTP request (default 1,000)")
    parser.add_argument("--chunk", type=int, default=5000, help="ingest_flags --chunk (default 5,000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the isolated part, medians (default 3)")
    parser.add_argument("--reviewers", default="1,4,8",
                        help="concurrent reviewers to measure, '' for none (default 1,4,8)")
    parser.add_argument("--review-seconds", type=float, default=10, help="seconds per reviewer measure (default 10)")
    parser.add_argument("--group-timeout", type=float, default=240,
                        help="stop waiting for the last flag to be in a case after this many seconds (default 240)")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy on the worker during flag-to-case and database waits "
                             "(summary in test-artifacts/bench/)")
    parser.add_argument("--scale-sizes", help="--mode scale: open cases at each step (default 10000,100000,1000000)")
    parser.add_argument("--scale-quick", action="store_true",
                        help="--mode scale: a smoke run (small sizes, few claims and requests)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files and the logs (printed path)")
    args = parser.parse_args(argv)
    if args.mode == "forum":
        return print_forum_matching()
    if args.mode == "export":
        return print_export()
    if args.mode == "scale":
        return print_scale(args.scale_sizes, quick=args.scale_quick)
    count = args.flags or (MEMORY_FLAGS if args.memory else 100_000)

    workdir = Path(tempfile.mkdtemp(prefix="reviewapp-bench-"))
    server, maintenance_db = server_from_settings()
    db = BenchDatabase(server, maintenance_db, workdir)
    try:
        path = workdir / "flags.jsonl"
        log(f"generating {count:,} flags for {args.accounts:,} accounts into {path}")
        size = generate(path, count, accounts=args.accounts)
        log(f"{size / 1e6:.1f} MB, {size / count:.0f} bytes a flag; creating database {db.name}")
        db.create()
        detector_id, token = prepare_app(db)
        from django.conf import settings

        broker = settings.CELERY_BROKER_URL.split(":")[0]
        header = (f"reviewapp `make bench`: {count:,} flags for {args.accounts:,} accounts ({size / count:.0f} bytes "
                  f"each on average), PostgreSQL {server_version(db)}, broker {broker}, {machine()}")
        if args.memory:
            log("ingest_flags (peak memory)")
            seconds, _, peak_kb = run_ingest_flags(db, path, "--chunk", str(args.chunk), memory=True,
                                                   expect={"created": count, "rejected": 0})
            peak_mb = peak_kb / 1024
            print(header)
            print(f"  ingest_flags peak RSS: {peak_mb:,.0f} MB (goal < {MEMORY_GOAL_MB} MB: "
                  f"{'met' if peak_mb < MEMORY_GOAL_MB else 'MISSED'}), measured with "
                  f"{'/usr/bin/time -v' if shutil.which('time', path='/usr/bin') else 'wait4() rusage'}; "
                  f"{count / seconds:,.0f} flags/s, {seconds:.1f} s")
            return 0

        log("(a) preparing rows for COPY")
        rows = prepare_rows(path, detector_id)
        bodies = batches(path, args.batch)
        runs: dict[str, list[float]] = collections.defaultdict(list)
        if args.mode in ("all", "isolated"):
            run_isolated(args, db, token, path, rows, bodies, count, runs, workdir)
        stack = None
        if args.mode in ("all", "stack"):
            stack = run_stack(args, db, token, path, rows, bodies, count, runs, workdir)

        baseline = statistics.median(count / seconds for seconds in runs["copy"])
        print()
        print(header)
        print("  DEBUG=0 everywhere (make run leaves Django's DEBUG on); ratio = rate / the baseline's rate; "
              "goals never fail the run")
        copy = rate_line("(a) raw COPY into a bare table, one transaction", count, runs["copy"], baseline,
                         note=f"baseline: median of {len(runs['copy'])} runs")
        print_table("Baseline", [copy])
        if args.mode in ("all", "isolated"):
            print_table(f"Isolated (gunicorn alone, no Celery worker; medians of {args.rounds} rounds)",
                        isolated_lines(args, count, runs, baseline))
        if stack:
            print_table("Under the real stack (make run's worker, beat, gunicorn, receiver, SMTP sink; one pass each, "
                        "4 twice)",
                        stack_lines(args, count, stack, baseline))
            if stack.cpu:
                print("CPU: average cores in use during each measure (PostgreSQL: this database's backends only)")
                for label, line in stack.cpu:
                    print(f"  {label}: {line}")
            if stack.cpu_per_flag:
                print("CPU time per 1,000 flags (web, worker, beat and this database's PostgreSQL backends; py-spy and "
                      "the clients left out)")
                for line in stack.cpu_per_flag:
                    print(f"  {line}")
            for profile in stack.profiles or ():
                print(f"  profile: {profile.relative_to(ROOT)}")
        if args.mode == "all":
            print_forum_matching()  # its own database and process, after the flags' measures
            print_export()  # the same
            print_scale(args.scale_sizes, quick=args.scale_quick)  # the same
        return 0
    finally:
        from bench.stack import run_cleanup

        run_cleanup(db, workdir, keep=args.keep, what="the benchmark")

