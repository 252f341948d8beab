"""`make load`: everyone at once — a ``locust --headless`` scenario against the real stack on loopback.

One run, one fresh database (``reviewapp_bench_<pid>``, bench/ingest.py's ``BenchDatabase``), the real
stack started the way `make run` starts it (bench/stack.py's ``RealStack``: Celery worker and beat,
gunicorn, the enforcement receiver, the SMTP sink and the local Forum hub, with this run's own queue prefix
and ports). Then:

1. seed: a detector and its token, staff with passwords per role (reviewers, senior reviewers, sharing
   officers, compliance officers), the published policy (``load_policies``, as `make run` does), flagged
   cases in the queues (posted through the API and grouped by the worker), and account holders with an
   enforced decision, a statement of reasons and a sign-in link issued beforehand (the link a notice carries);
2. run ``locust -f bench/locustfile.py --headless`` for ``--run-time`` with ``--users`` (the classes and their
   weights are in the locustfile), with ``--csv`` stats;
3. count what the load did in the database (flags, cases, decisions by state, appeals, shares, pushes) and
   write the results section of docs/performance.md from locust's CSV (bench/load_report.py).

Every request a user makes is named by its endpoint; anything but a 2xx/3xx it did not expect is a failure.
The exit code is 1 when locust counted a failure, or when the stack's logs name a problem the people's requests
cannot see (a gunicorn worker that died or timed out, a 5xx, a failed Celery task, a Forum pull with errors, the
Forum hub answering 500), so that neither goes unnoticed.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.ingest import (
    ACCOUNTS,
    ROOT,
    BenchDatabase,
    batches,
    free_port,
    generate,
    log,
    measure_http,
    prepare_app,
    server_from_settings,
)

DOC = ROOT / "docs" / "performance.md"
LOCUSTFILE = ROOT / "bench" / "locustfile.py"
SEED_ACCOUNTS = 3_000
# Staff per role. A locust user takes the next login of its role (round robin), so two users may share one.
STAFF = {"reviewer": 10, "senior_reviewer": 4, "sharing_officer": 3, "compliance_officer": 2}


def seed_staff(prefix: str) -> dict[str, list[list[str]]]:
    """Staff members per role with passwords (``people.services.staff_create``)."""
    import secrets

    from reviewapp.audit.services import SYSTEM
    from reviewapp.people.roles import Role
    from reviewapp.people.services import staff_create

    people: dict[str, list[list[str]]] = {}
    for role, count in STAFF.items():
        for number in range(count):
            password = secrets.token_urlsafe(18)
            user, _ = staff_create(actor=SYSTEM, username=f"{prefix}-{role.replace('_', '-')}-{number}",
                                   role=Role(role), password=password)
            people.setdefault(role, []).append([user.username, password])
    return people


def seed_holders(port: int, count: int, reviewer: list[str]) -> list[dict]:
    """``count`` account holders with an enforced decision (a warning under UP-2.1, decided through the API by
    one seeding reviewer, bench/review.py) and a fresh sign-in link each, as the decision's notice carries."""
    from urllib.parse import urlsplit

    from django.db import connections, transaction

    from bench.review import Reviewer
    from reviewapp.cases.holders import holder_link_issue
    from reviewapp.cases.models import Decision, HolderLink

    seeder = Reviewer(port, *reviewer)
    seeder.login()
    decided = 0
    while decided < count:
        if seeder.decide_one():
            decided += 1
        elif seeder.errors:
            raise RuntimeError(f"seeding the holders' decisions failed: {seeder.errors[:3]}")
        else:
            raise RuntimeError(f"the queues ran dry after {decided} of {count} holders' decisions")
    holders = []
    decisions = (Decision.objects.filter(state=Decision.State.ENFORCED, statement__isnull=False)
                 .select_related("account", "statement").order_by("pk"))
    with transaction.atomic():
        for decision in decisions:
            link = holder_link_issue(account=decision.account, purpose=HolderLink.Purpose.NOTICE)
            holders.append({"link": urlsplit(link).path, "decision": decision.pk, "statement": decision.statement.pk,
                            "account": decision.account.external_id})
    connections.close_all()
    return holders


def database_counts(db: BenchDatabase) -> dict[str, int]:
    """What the load left in the database (read after the run, with the stack still up)."""
    queries = {
        "flags": "SELECT count(*) FROM flags_flag",
        "flags without a case": "SELECT count(*) FROM flags_flag WHERE case_id IS NULL",
        "cases": "SELECT count(*) FROM cases_case",
        "open cases": "SELECT count(*) FROM cases_case WHERE state IN ('new', 'in_review', 'awaiting_approval')",
        "decisions enforced": "SELECT count(*) FROM cases_decision WHERE state = 'enforced'",
        "decisions awaiting approval": "SELECT count(*) FROM cases_decision WHERE state = 'awaiting_approval'",
        "decisions approved": "SELECT count(*) FROM cases_decision WHERE approved_at IS NOT NULL",
        "appeals filed": "SELECT count(*) FROM appeals_appeal",
        "share proposals": "SELECT count(*) FROM forum_shareproposal",
        "shares approved": "SELECT count(*) FROM forum_shareproposal WHERE state = 'approved'",
        "Forum pushes sent to the hub": "SELECT count(*) FROM forum_forumpush WHERE state = 'sent'",
        "Forum pushes still pending": "SELECT count(*) FROM forum_forumpush WHERE state = 'pending'",
        "Forum pushes failed or refused": "SELECT count(*) FROM forum_forumpush WHERE state IN ('failed', 'refused')",
        "collections pulled": "SELECT count(*) FROM forum_pullcursor WHERE pulled_at IS NOT NULL",
        "inbound objects pulled": "SELECT count(*) FROM forum_inboundobject",
        "outbox delivered": "SELECT count(*) FROM outbox_outboxmessage WHERE state = 'delivered'",
        "outbox pending": "SELECT count(*) FROM outbox_outboxmessage WHERE state = 'pending'",
        "outbox failed": "SELECT count(*) FROM outbox_outboxmessage WHERE state = 'failed'",
        "audit events": "SELECT count(*) FROM audit_auditevent",
    }
    counts = {}
    with db.server.connect(db.name, autocommit=True) as conn:
        for name, query in queries.items():
            try:
                counts[name] = conn.execute(query).fetchone()[0]
            except Exception as exc:  # a renamed table must not lose the run's numbers
                log(f"count '{name}' failed: {exc}")
    return counts


def web_log_problems(workdir: Path, workers: int, names: tuple[str, ...] = ("web",)) -> list[str]:
    """Lines of gunicorn's log that say a worker died, timed out or was restarted, or that a request failed on the
    server (5xx), before the stop at the end: a dropped connection must not hide one of these. ``names``: the
    logs of every web instance (``web``, ``web2`` …)."""
    problems = []
    for name in names:
        log_path = workdir / f"{name}.log"
        if not log_path.exists():
            problems.append(f"(no {name}.log)")
            continue
        booted = 0
        for line in log_path.read_text(errors="replace").splitlines():
            if "Handling signal: term" in line:
                break  # the stop at the end
            if "Booting worker" in line:
                booted += 1
                if booted <= workers:  # the first boot of each
                    continue
            if any(mark in line for mark in ("WORKER TIMEOUT", "Booting worker", "Worker exiting", "Traceback",
                                             "ERROR")) or re.search(r'" 5\d\d ', line):
                problems.append((f"{name}: " if len(names) > 1 else "") + line.strip()[:300])
    return problems


_ACCESS = re.compile(r'"[A-Z]+ \S+ HTTP/[\d.]+" \d{3} ')
_TASK_DONE = re.compile(r"Task (\S+)\[[^\]]*\] succeeded")


def served_by_web(workdir: Path, names: tuple[str, ...]) -> dict[str, int]:
    """Requests each web instance answered (lines of its access log)."""
    counts = {}
    for name in names:
        path = workdir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        counts[name] = sum(1 for line in text.splitlines() if _ACCESS.search(line))
    return counts


def tasks_by_worker(workdir: Path, names: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """Tasks each worker node finished, by task (the ``succeeded`` lines of its log)."""
    done: dict[str, dict[str, int]] = {}
    for name in names:
        path = workdir / f"{name}.log"
        counter: collections.Counter = collections.Counter()
        if path.exists():
            for line in path.read_text(errors="replace").splitlines():
                match = _TASK_DONE.search(line)
                if match:
                    counter[match[1].rsplit(".", 1)[-1]] += 1
        done[name] = dict(counter.most_common())
    return done


_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # werkzeug colours the hub's access log
_PULL_ERRORS = re.compile(r"pull_inbound\[[^\]]*\] succeeded.*'errors': \[['\"]")


def stack_log_problems(workdir: Path, workers: tuple[str, ...] = ("worker",)) -> list[str]:
    """What the other parts' logs say went wrong during the run: a Celery task that failed or logged an error, a
    Forum pull that came back with errors, the Forum hub answering 500 (the people's requests cannot see these)."""
    problems = []
    worker_bad = (lambda line: "ERROR/" in line or " raised unexpected" in line  # noqa: E731
                  or _PULL_ERRORS.search(line))
    for name, bad in ([(worker, worker_bad) for worker in workers]
                      + [("beat", lambda line: "ERROR/" in line),
                         ("forum_hub", lambda line: '" 500 ' in line)]):
        path = workdir / f"{name}.log"
        if path.exists():
            problems += [f"{name}: {_ANSI.sub('', line).strip()[:300]}"
                         for line in path.read_text(errors="replace").splitlines() if bad(line)]
    return problems


# --- Invariants after the run ------------------------------------------------------------------------------

# A case's stored aggregates against a recomputation from its flags (as tests/flags/test_grouping_properties.py's
# aggregates_disagree compares them).
_AGGREGATES_DISAGREE = """
WITH recomputed AS (
    SELECT case_id, count(*) AS n, coalesce(sum(request_count), 0) AS requests, max(score) AS score,
           max(observed_to) AS last, array_agg(DISTINCT signal ORDER BY signal) AS signals
    FROM flags_flag WHERE case_id IS NOT NULL GROUP BY case_id
)
SELECT count(*) FROM cases_case c FULL JOIN recomputed r ON r.case_id = c.id
WHERE coalesce(c.flag_count, 0) <> coalesce(r.n, 0)
   OR (r.case_id IS NOT NULL AND (c.total_requests <> least(r.requests, 9223372036854775807)
       OR c.max_score IS DISTINCT FROM r.score OR c.last_observed_at IS DISTINCT FROM r.last
       OR (SELECT array_agg(s ORDER BY s) FROM unnest(c.signals) s) IS DISTINCT FROM r.signals))
"""
# A case claimed by another reviewer while someone held it: more reviewers claimed it than releases and lapses
# could have freed it for (a holder's renewal is a claim by the same reviewer).
_DOUBLE_CLAIMS = """
SELECT count(*) FROM (
    SELECT target_id FROM audit_auditevent WHERE target_type = 'cases.case'
      AND action IN ('case.claimed', 'case.released', 'case.claim_lapsed')
    GROUP BY target_id
    HAVING count(DISTINCT actor_id) FILTER (WHERE action = 'case.claimed')
           > 1 + count(*) FILTER (WHERE action <> 'case.claimed')
) twice
"""
_CLAIMED = "SELECT count(DISTINCT target_id) FROM audit_auditevent WHERE action = 'case.claimed'"
_TWICE_DECIDED = "SELECT count(*) FROM (SELECT case_id FROM cases_decision GROUP BY case_id HAVING count(*) > 1) d"


def invariants(db: BenchDatabase, workdir: Path, env: dict[str, str], *, failures: int) -> dict[str, object]:
    """What must hold after any run, whatever the number of web servers and worker nodes: each a count that must
    be 0 (or True). Waits first (bounded) for the workers to group what the detectors posted, for the audit
    sequencer, and for the outbox to drain."""
    from bench.stack import PendingWatch

    watch = PendingWatch(db)
    try:
        _, pending_left = watch.wait_empty(timeout=240)
        watch.wait_sequenced(timeout=60)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and watch.conn.execute(
                "SELECT EXISTS (SELECT 1 FROM outbox_outboxmessage WHERE state = 'pending')").fetchone()[0]:
            time.sleep(0.5)
        one = lambda query: watch.conn.execute(query).fetchone()[0]  # noqa: E731
        result: dict[str, object] = {
            "failed requests": failures,
            "flags without a case": pending_left or one("SELECT count(*) FROM flags_flag WHERE case_id IS NULL"),
            "flags set aside": one("SELECT count(*) FROM flags_flagsetaside"),
            "cases whose aggregates differ from their flags'": one(_AGGREGATES_DISAGREE),
            "cases claimed (not a fault)": one(_CLAIMED),
            "cases claimed while another reviewer held them": one(_DOUBLE_CLAIMS),
            "cases decided twice": one(_TWICE_DECIDED),
            "outbox messages still pending": one("SELECT count(*) FROM outbox_outboxmessage WHERE state = 'pending'"),
            "outbox messages failed": one("SELECT count(*) FROM outbox_outboxmessage WHERE state = 'failed'"),
        }
        delivered = {key for (key,) in watch.conn.execute(
            "SELECT idempotency_key FROM outbox_outboxmessage WHERE kind = 'enforcement' AND state = 'delivered'")}
    finally:
        watch.close()
    # The enforcement receiver applies a key once and logs each application: a key twice in its log is a
    # webhook applied twice; a REFUSED line is one key sent with two different bodies.
    applied = collections.Counter()
    received = workdir / "data" / "enforcement-received.jsonl"
    if received.exists():
        for line in received.read_text().splitlines():
            if line.strip():
                applied[json.loads(line)["idempotency_key"]] += 1
    receiver_log = (workdir / "receiver.log").read_text(errors="replace") if (workdir / "receiver.log").exists() else ""
    result["webhooks applied twice"] = sum(1 for count in applied.values() if count > 1)
    result["webhooks refused (one key, two bodies)"] = receiver_log.count("REFUSED")
    result["delivered webhooks the receiver never applied"] = len(delivered - set(applied))
    result["redeliveries the receiver recognised (not a fault)"] = receiver_log.count("already applied")
    done = subprocess.run([sys.executable, "manage.py", "verify_audit"], cwd=ROOT, env=env, check=False,
                          capture_output=True, text=True)
    result["audit chain verifies"] = done.returncode == 0
    result["verify_audit says"] = (done.stdout + done.stderr).strip().splitlines()[-1:] or [""]
    return result


def invariants_broken(result: dict[str, object]) -> list[str]:
    return [name for name, value in result.items()
            if (name == "audit chain verifies" and value is not True)
            or (isinstance(value, int) and not isinstance(value, bool) and value and "not a fault" not in name)]


def run_locust(args, ports: list[int], seed_path: Path, csv_prefix: Path, env: dict[str, str]) -> int:
    hosts = [f"http://127.0.0.1:{port}" for port in ports]
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", hosts[0],
               "--users", str(args.users), "--spawn-rate", str(args.spawn_rate), "--run-time", args.run_time,
               "--stop-timeout", "20", "--csv", str(csv_prefix), "--only-summary", "--loglevel", "WARNING"]
    log(f"locust: {args.users} users, spawn rate {args.spawn_rate}/s, {args.run_time}, over {', '.join(hosts)}")
    done = subprocess.run(command, cwd=ROOT, check=False,
                          env={**env, "LOAD_SEED": str(seed_path), "LOAD_NOTES": f"{csv_prefix}_notes.json",
                               "LOAD_HOSTS": ",".join(hosts)})
    return done.returncode


def _worker_queues(text: str) -> list[list[str]] | None:
    """``ingest,maintenance/outbox,forum``: the first worker node's queue kinds, then the second's …"""
    if not text:
        return None
    return [[kind for kind in part.split(",") if kind] for part in text.split("/")]


def _failure_count(csv_prefix: Path) -> int:
    import csv

    path = Path(f"{csv_prefix}_stats.csv")
    if not path.exists():
        return -1
    with open(path, newline="") as stream:
        total = next((row for row in csv.DictReader(stream) if row["Name"] == "Aggregated"), None)
    return int(total["Failure Count"]) if total else -1


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20, help="concurrent locust users (default 20)")
    parser.add_argument("--spawn-rate", type=float, default=5, help="users started per second (default 5)")
    parser.add_argument("--run-time", default="3m", help="how long the load runs, locust syntax (default 3m)")
    parser.add_argument("--seed-flags", type=int, default=8_000,
                        help=f"flags posted before the run, over {SEED_ACCOUNTS:,} accounts (default 8,000)")
    parser.add_argument("--run-flags", type=int, default=100_000,
                        help="flags the detectors post during the run, reused under new ids if they run out")
    parser.add_argument("--batch", type=int, default=500, help="flags per detector request (default 500)")
    parser.add_argument("--holders", type=int, default=150, help="holders with a decision and a link (default 150)")
    parser.add_argument("--output", type=Path, default=DOC, help="the document whose results section is rewritten")
    parser.add_argument("--no-doc", action="store_true", help="print the results, leave docs/performance.md alone")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, CSV) and print its path")
    parser.add_argument("--webs", type=int, default=1,
                        help="gunicorn instances on separate ports (as separate machines); users spread over them")
    parser.add_argument("--web-workers", type=int, default=None,
                        help="gunicorn processes per web instance (default: make run's, one per core, at least 2)")
    parser.add_argument("--workers", type=int, default=1, help="Celery worker nodes (distinct -n names; default 1)")
    parser.add_argument("--worker-queues", default="", help="queue kinds per worker node, e.g. "
                        "'ingest,maintenance/outbox,forum' (default: every node consumes every queue)")
    parser.add_argument("--broker", default="", help="CELERY_BROKER_URL for this run (redis://… or amqp://…; "
                        "default: the environment's, else kombu's SQLAlchemy transport in the run's database)")
    args = parser.parse_args(argv)
    if args.broker:
        os.environ["CELERY_BROKER_URL"] = args.broker

    workdir = Path(tempfile.mkdtemp(prefix="reviewapp-load-"))
    # The local Forum hub on a free port (a running `make run` holds the demo's), and pulls often enough to be
    # part of a few minutes' load (beat pulls every collection at this interval).
    os.environ["FORUM_TAXII_API_ROOT"] = f"http://127.0.0.1:{free_port()}/forum/"
    os.environ.setdefault("FORUM_PULL_INTERVAL_SECONDS", "30")
    server, maintenance_db = server_from_settings()
    db = BenchDatabase(server, maintenance_db, workdir)
    stack = None
    try:
        log(f"creating database {db.name}; migrating, publishing the policy")
        db.create()
        _, token = prepare_app(db)
        from django.conf import settings

        from bench.main import machine, server_version
        from bench.stack import PendingWatch, RealStack

        seed_file, run_file = workdir / "seed-flags.jsonl", workdir / "run-flags.jsonl"
        generate(seed_file, args.seed_flags, accounts=SEED_ACCOUNTS)
        generate(run_file, args.run_flags, accounts=ACCOUNTS, seed=20261203)
        people = seed_staff(f"load{os.getpid()}")

        stack = RealStack(free_port(), workdir, node=f"load{os.getpid()}", webs=args.webs, workers=args.workers,
                          web_workers=args.web_workers,
                          worker_queues=_worker_queues(args.worker_queues))
        log(f"starting the real stack ({', '.join(stack.commands)})")
        stack.start()
        log(f"seed: {args.seed_flags:,} flags through the API, grouped into cases by the worker")
        seed_bodies = batches(seed_file, 1000)
        measure_http(db, stack.port, token, seed_bodies, clients=2, expected=args.seed_flags, truncate=False)
        watch = PendingWatch(db)
        try:
            _, left = watch.wait_empty(timeout=300, stack=stack)
        finally:
            watch.close()
        if left:
            raise RuntimeError(f"{left:,} seed flags still without a case after 300 s")
        log(f"seed: {args.holders} holders with an enforced decision and a sign-in link")
        holders = seed_holders(stack.port, args.holders, people["reviewer"][0])
        bodies_file = workdir / "run-bodies.jsonl"
        with open(bodies_file, "wb") as out:
            for body in batches(run_file, args.batch):
                out.write(body + b"\n")
        seed_path = workdir / "seed.json"
        seed_path.write_text(json.dumps({
            "token": token, "people": people, "holders": holders, "bodies": str(bodies_file),
            "collections": list(settings.FORUM_COLLECTIONS), "batch": args.batch,
        }))

        csv_prefix = workdir / "locust"
        before = time.monotonic()
        code = run_locust(args, stack.ports, seed_path, csv_prefix, db.env())
        seconds = time.monotonic() - before
        stack.check_alive()
        failures = _failure_count(csv_prefix)
        log("checking the invariants (waiting for grouping, the audit sequencer and the outbox first)")
        checked = invariants(db, workdir, db.env(), failures=failures)
        counts = database_counts(db)
        notes = Path(f"{csv_prefix}_notes.json")

        from bench import load_report

        facts = {
            "machine": machine(), "postgresql": server_version(db),
            "broker": settings.CELERY_BROKER_URL.split(":")[0],
            "web": (f"{len(stack.ports)} × " if len(stack.ports) > 1 else "")
            + f"gunicorn {stack.stack.web_workers} processes × {stack.stack.web_threads} threads (gthread)"
            + (" (separate instances on separate ports, users spread over them)" if len(stack.ports) > 1 else ""),
            "worker": (f"{args.workers} Celery worker nodes" if args.workers > 1 else "Celery worker")
            + f", concurrency {stack.stack.worker_concurrency}"
            + (f" each, queues {args.worker_queues}" if args.worker_queues else
               (", each on every queue" if args.workers > 1 else "")) + ", and one beat",
            "load_average": " ".join(f"{x:.1f}" for x in os.getloadavg()),
            "users": args.users, "spawn_rate": args.spawn_rate, "run_time": args.run_time,
            "seconds": round(seconds), "batch": args.batch, "seed_flags": args.seed_flags,
            "seed_accounts": SEED_ACCOUNTS, "holders": len(holders), "staff": {k: len(v) for k, v in people.items()},
            "pull_interval": settings.FORUM_PULL_INTERVAL_SECONDS, "counts": counts,
            "notes": json.loads(notes.read_text()) if notes.exists() else [],
            "web_log": web_log_problems(workdir, stack.stack.web_workers, tuple(stack.web_names)),
            "stack_log": stack_log_problems(workdir, tuple(stack.worker_names)),
            "served_by_web": served_by_web(workdir, tuple(stack.web_names)),
            "tasks_by_worker": tasks_by_worker(workdir, tuple(stack.worker_names)),
            "invariants": checked,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        }
        (workdir / "facts.json").write_text(json.dumps(facts, indent=1))
        section = load_report.section(csv_prefix, facts)
        print(section)
        if not args.no_doc:
            load_report.write(args.output, section)
            log(f"results written to {args.output}")
        if code:
            log(f"locust exited {code}: failures above (its CSV: {csv_prefix}_failures.csv)")
        if facts["web_log"] or facts["stack_log"]:
            log("the stack's logs name problems (above): the run does not count as error-free")
        broken = invariants_broken(checked)
        if broken:
            log(f"invariants broken: {', '.join(broken)}")
        return 1 if code or facts["web_log"] or facts["stack_log"] or broken else 0
    finally:
        if stack is not None:
            stack.stop()
        from bench.stack import run_cleanup

        run_cleanup(db, workdir, keep=args.keep, what="the load run")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
