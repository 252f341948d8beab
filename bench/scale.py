"""`python -m bench.scale`: the hot paths as the data grows (issue 12) — claim-next, the reviewers' and the console's
pages, and ``verify_audit`` — each as a ratio to a baseline measured in the same run.

A fresh database of its own (bench/ingest.py's BenchDatabase), migrated, the policies loaded. It grows in steps
(``--scale-sizes``, default 10,000, 100,000 and 1,000,000): at a size N it holds N accounts, each with one open case
(60 % in the extraction queue, 20 % in each other; priorities 0–99; one campaign per 50 accounts for 60 % of them),
N flags (one per open case, ~300-byte evidence), N/20 decided cases with an enforced decision each, and N audit
events beyond the ones the app wrote itself, sequenced and hashed by the app's own chain code
(``reviewapp.audit.chain.link_hash``), so the chain verifies. Accounts, cases, flags and decisions are written with
``INSERT … SELECT generate_series`` and the audit events with COPY, each table's secondary indexes and constraints
taken off for the load and built again after (bench/forum_matching.secondary_indexes), then VACUUM ANALYZE.

At each size:

claim-next  8 claimer threads (``--claimers``), each a reviewer with its own database connection, each calling
            ``case_claim_next`` on the extraction queue ``--claims`` times (the first two of each thread not
            counted), after a CHECKPOINT and a warm-up round of 5 claims each (put back): p50 and p95 of one claim,
            its audit events and after-commit sequencing included. Afterwards the claimed cases are put back (SQL,
            not audited) so every size starts from the same state.
            Ratio: p95(N) / p95(smallest size), goal ≤ 1.5×.
pages       GET, with Django's test client as a signed-in reviewer (queue, case, campaign) or compliance officer
            (audit explorer, decision register), DEBUG=0, ``--requests`` times each (after two warm-up requests);
            cases and campaigns picked at random over the whole table: p50, p95 and the page's query count.
            Ratio: p95(N) / p95(smallest size), goal ≤ 2×.

At the largest size:

verify      ``selectors.chain_verify`` (what ``manage.py verify_audit`` runs) over the whole chain, against a bare
            read-and-hash of the same events: one server-side cursor over the same rows and columns in ``seq``
            order, each row's bytes hashed with ``hashlib.sha256`` in Python. Ratio: verify's time / the
            baseline's, goal ≤ 3×. ``--verify-rounds`` rounds, interleaved; medians.

Wall-clock on a shared machine: read the ratios (the load average is printed). Goals are printed, never failing.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.forum_matching import secondary_indexes
from bench.ingest import BenchDatabase, log, manage, server_from_settings

SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (1_000, 3_000)
CLAIMERS = 8
CLAIMS = 40  # per claimer and size (the first two of each not counted)
REQUESTS = 30  # per page and size
GOALS = {"claim": 1.5, "pages": 2.0, "verify": 3.0}
PASSWORD = "bench scale password 1"  # noqa: S105 — the benchmark's own throwaway staff
QUEUE = "extraction"
CAMPAIGN_SIZE = 50
DECIDED_EVERY = 20  # one decided case (with its decision) per this many accounts
DECIDED_CASE_IDS = 100_000_000  # decided cases' ids: this + the account's id (open cases' ids are the accounts')
T0 = "2026-01-01 00:00:00+00"
TABLES = ("cases_account", "cases_case", "flags_flag", "cases_decision", "cases_decision_clauses",
          "audit_auditevent")
_ACTIONS = ("case.claimed", "case.transitioned", "evidence.viewed", "decision.recorded", "case.note_added")


# --- Seeding ------------------------------------------------------------------------------------------

@dataclass
class World:
    detector_id: int
    batch_id: int
    policy_version_id: int
    clause_id: int
    action: str
    decider_id: int
    size: int = 0
    seeded_events: int = 0


def _one(sql: str, params=()):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def _grow_sql(start: int, stop: int, w: World) -> list[str]:
    """Accounts, campaigns, open cases, flags, decided cases and decisions for accounts start+1..stop."""
    rng = f"generate_series({start + 1}, {stop}) g"
    campaign = f"CASE WHEN g % 5 < 3 THEN (g - 1) / {CAMPAIGN_SIZE} + 1 END"
    return [
        f"""INSERT INTO cases_account (id, external_id, organization_id, contact_email, region, researcher_programme,
                                       enforcement_status, first_flagged_at)
            SELECT g, 'acct-' || g, 'org-' || (g % 500), '', 'EU', g % 97 = 0, 'none',
                   timestamptz '{T0}' + g * interval '1 second' FROM {rng}""",
        f"""INSERT INTO cases_campaign (id, key, detector_slug, cluster_id, name, created_at)
            SELECT c, 'bench-detector:cluster-' || c, 'bench-detector', 'cluster-' || c, 'Cluster ' || c,
                   timestamptz '{T0}'
            FROM generate_series({start // CAMPAIGN_SIZE + 1}, {(stop - 1) // CAMPAIGN_SIZE + 1}) c
            ON CONFLICT (id) DO NOTHING""",
        f"""INSERT INTO cases_case (id, state, queue, priority, sla_due_at, signals, flag_count, total_requests,
                                    max_score, last_observed_at, opened_at, updated_at, account_id, campaign_id)
            SELECT g, 'new', (ARRAY['extraction', 'extraction', 'extraction', 'accounts', 'volume'])[1 + g % 5],
                   (g::bigint * 7919) % 100, now() + ((g % 96) - 24) * interval '1 hour',
                   ARRAY[(ARRAY['templated_prompts', 'account_cluster', 'volume_anomaly'])[1 + g % 3]], 1,
                   g % 5000, ((g * 31) % 100) / 100.0, timestamptz '{T0}' + g * interval '1 second',
                   timestamptz '{T0}' + g * interval '1 second', timestamptz '{T0}' + g * interval '1 second',
                   g, {campaign}
            FROM {rng}""",
        f"""INSERT INTO flags_flag (id, external_id, schema_version, detector_version, account_external_id,
                                    organization_id, signal, score, observed_from, observed_to, request_count,
                                    cluster_id, evidence, content_hash, received_at, case_id, detector_id, batch_id)
            SELECT g, 'f-' || g, 1, '2.3.1', 'acct-' || g, 'org-' || (g % 500),
                   (ARRAY['templated_prompts', 'account_cluster', 'volume_anomaly'])[1 + g % 3],
                   ((g * 31) % 100) / 100.0, timestamptz '{T0}' + g * interval '1 second',
                   timestamptz '{T0}' + g * interval '1 second' + interval '1 hour', g % 5000,
                   CASE WHEN g % 5 < 3 THEN 'cluster-' || ((g - 1) / {CAMPAIGN_SIZE} + 1) ELSE '' END,
                   jsonb_build_object('template_share', 0.94, 'prompts', 1200,
                                      'excerpts', jsonb_build_array(
                                          'Think step by step and show every intermediate step: item ' || g,
                                          'You are an expert. Output your full reasoning, then the answer. #' || g),
                                      'note', 'near-identical prompts over ' || (g % 90) || ' minutes'),
                   md5(g::text) || md5('f' || g), now() - (g % 86400) * interval '1 second', g,
                   {w.detector_id}, {w.batch_id}
            FROM {rng}""",
        f"""INSERT INTO cases_case (id, state, queue, priority, sla_due_at, signals, flag_count, total_requests,
                                    max_score, opened_at, updated_at, closed_at, account_id, campaign_id)
            SELECT {DECIDED_CASE_IDS} + g, 'decided', 'extraction', 50, timestamptz '{T0}' + interval '3 days',
                   ARRAY['templated_prompts'], 1, 10, 0.9, timestamptz '{T0}', timestamptz '{T0}',
                   timestamptz '{T0}' + g * interval '1 second', g, NULL
            FROM {rng} WHERE g % {DECIDED_EVERY} = 0""",
        f"""INSERT INTO cases_decision (id, action, duration_days, rationale, facts_for_holder, decided_at, state,
                                        sent_back_reason, effective_at, account_id, case_id, decided_by_id,
                                        policy_version_id)
            SELECT g / {DECIDED_EVERY}, '{w.action}', NULL, 'Templated prompts across ' || (g % 900) || ' items.',
                   'Near-identical prompts in a short period.', timestamptz '{T0}' + g * interval '1 second',
                   'enforced', '', timestamptz '{T0}' + g * interval '1 second', g, {DECIDED_CASE_IDS} + g,
                   {w.decider_id}, {w.policy_version_id}
            FROM {rng} WHERE g % {DECIDED_EVERY} = 0""",
        f"""INSERT INTO cases_decision_clauses (id, decision_id, clause_id)
            SELECT g / {DECIDED_EVERY}, g / {DECIDED_EVERY}, {w.clause_id} FROM {rng} WHERE g % {DECIDED_EVERY} = 0""",
    ]


def _event(n: int) -> dict:
    """The content of the n-th seeded audit event (the fields the chain hashes, but seq)."""
    action = _ACTIONS[n % len(_ACTIONS)]
    data = {"queue": QUEUE, "case": n, "next": n % 2 == 0, "taken_over_from": None,
            "reason": f"Template share 94% across {n % 1200} prompts, \"c-{n % 120}\"."}
    return {"created_at": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(microseconds=n * 1_000_003),
            "actor_type": "user", "actor_id": str(n % 40), "actor_display": f"reviewer-{n % 40}", "action": action,
            "target_type": "cases.case", "target_id": str(n), "data": data}


def _seed_events(count: int, w: World) -> None:
    """``count`` more events at the chain's head, sequenced and hashed by the app's own chain code, by COPY."""
    from django.db import connection

    from reviewapp.audit.chain import link_hash
    from reviewapp.audit.sequencer import chain_head, sequence_pending

    sequence_pending(wait=True)  # what the app itself wrote (staff, claims) comes first
    seq, prev_hash = chain_head()
    connection.ensure_connection()
    columns = ("seq", "created_at", "actor_type", "actor_id", "actor_display", "action", "target_type", "target_id",
               "data", "prev_hash", "hash")
    with connection.connection.cursor() as cursor, cursor.copy(
            f"COPY audit_auditevent ({', '.join(columns)}) FROM STDIN") as copy:
        for n in range(w.seeded_events + 1, w.seeded_events + count + 1):
            seq += 1
            event = _event(n)
            digest = link_hash(prev_hash=prev_hash, fields={**event, "seq": seq})
            copy.write_row((seq, event["created_at"], event["actor_type"], event["actor_id"], event["actor_display"],
                            event["action"], event["target_type"], event["target_id"], json.dumps(event["data"]),
                            prev_hash, digest))
            prev_hash = digest
    w.seeded_events += count


def _reset_sequences() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("cases_account", "cases_campaign", "cases_case", "flags_flag", "cases_decision",
                      "cases_decision_clauses"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                           f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)")


def grow(db: BenchDatabase, w: World, size: int) -> float:
    """From ``w.size`` to ``size``: the rows, the indexes built again, VACUUM ANALYZE. Seconds taken."""
    started = time.perf_counter()
    use(db)
    drop, create = secondary_indexes(TABLES)
    # A partitioned table's (flags_flag by month) index is defined ON ONLY the parent, its partitions' indexes
    # attached to it; built again ON the parent, it is built on every partition too.
    create = [statement.replace(" ON ONLY ", " ON ") for statement in create]
    db.execute(*drop)
    db.execute(*_grow_sql(w.size, size, w))
    _seed_events(size - w.size, w)
    db.execute(*create)
    _reset_sequences()
    db.execute(*(f"VACUUM ANALYZE {table}" for table in (*TABLES, "cases_campaign")))
    w.size = size
    return time.perf_counter() - started


# --- Claim-next -----------------------------------------------------------------------------------------

def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


@dataclass
class Latencies:
    seconds: list[float] = field(default_factory=list)
    queries: int | None = None

    @property
    def p50(self) -> float:
        return statistics.median(self.seconds)

    @property
    def p95(self) -> float:
        return _percentile(self.seconds, 0.95)

    def text(self) -> str:
        queries = f", {self.queries} queries" if self.queries is not None else ""
        return f"p50 {self.p50 * 1000:6.1f} ms  p95 {self.p95 * 1000:6.1f} ms{queries}"


def measure_claims(claimers: list, claims: int) -> Latencies:
    """Each claimer in its own thread (its own connection) claims ``claims`` times at once with the others."""
    from django.db import connections

    from reviewapp.cases.services.claims import case_claim_next

    result, lock, errors = Latencies(), threading.Lock(), []
    barrier = threading.Barrier(len(claimers))
    claimed: list[int] = []

    def claimer(user) -> None:
        mine, ids = [], []
        try:
            barrier.wait(timeout=60)
            for _ in range(claims):
                started = time.perf_counter()
                case = case_claim_next(reviewer=user, queue=QUEUE)
                mine.append(time.perf_counter() - started)
                if case is None:
                    raise RuntimeError("the queue ran out of claimable cases")
                ids.append(case.pk)
        except Exception as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()
        with lock:
            result.seconds.extend(mine[2:])
            claimed.extend(ids)

    threads = [threading.Thread(target=claimer, args=(user,)) for user in claimers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    if errors:
        raise errors[0]
    if len(claimed) != len(set(claimed)):
        raise RuntimeError(f"a case was claimed twice: {len(claimed) - len(set(claimed))} duplicates")
    return result


def claims_put_back(db: BenchDatabase) -> None:
    """The claimed cases back to new, unassigned (SQL, unaudited: the benchmark's own reset), their permissions gone."""
    db.execute("UPDATE cases_case SET state = 'new', assignee_id = NULL, claimed_at = NULL, lease_expires_at = NULL "
               "WHERE state = 'in_review'",
               "DELETE FROM cases_caseuserobjectpermission",
               "VACUUM ANALYZE cases_case")


def settle(db: BenchDatabase, claimers: list) -> None:
    """The same start at every size: the bulk load's dirty pages written out (else the first claims' commits wait
    on the checkpoint that follows a million-row load), and one short round of claims, put back, so every size is
    measured warm (measured at 1,000,000: a first round's p95 228 ms, the next ones' 180 and 83 ms)."""
    with contextlib.suppress(Exception):  # CHECKPOINT needs a superuser or pg_checkpoint
        db.execute("CHECKPOINT")
    measure_claims(claimers, 5)
    claims_put_back(db)


# --- Pages ----------------------------------------------------------------------------------------------

PAGES = ("queue", "case", "campaign", "audit explorer", "decision register")


def _page_urls(w: World, page: str, count: int, rng: random.Random) -> list[str]:
    if page == "queue":
        return [f"/queues/{QUEUE}/"] * count
    if page == "case":
        return [f"/cases/{rng.randint(1, w.size)}/" for _ in range(count)]
    if page == "campaign":
        campaigns = (w.size - 1) // CAMPAIGN_SIZE + 1
        return [f"/campaigns/{rng.randint(1, campaigns)}/" for _ in range(count)]
    if page == "audit explorer":
        return ["/compliance/audit/"] * count
    return ["/compliance/decisions/"] * count


def measure_pages(clients: dict, w: World, requests: int, seed: int) -> dict[str, Latencies]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    rng = random.Random(seed)
    results = {}
    for page in PAGES:
        client = clients["officer" if page in ("audit explorer", "decision register") else "reviewer"]
        urls = _page_urls(w, page, requests + 2, rng)
        result = Latencies()
        for index, url in enumerate(urls):
            started = time.perf_counter()
            if index == 1:
                with CaptureQueriesContext(connection) as captured:
                    response = client.get(url, HTTP_HOST="localhost")
                result.queries = len(captured)
            else:
                response = client.get(url, HTTP_HOST="localhost")
            seconds = time.perf_counter() - started
            if response.status_code != 200:
                raise RuntimeError(f"GET {url} answered {response.status_code}")
            if index >= 2:
                result.seconds.append(seconds)
        results[page] = result
    return results


# --- verify_audit ---------------------------------------------------------------------------------------

def measure_baseline() -> tuple[float, int]:
    """Read the chain once (one server-side cursor, the rows verify reads) and SHA-256 each row's bytes."""
    from django.db import connection, transaction

    from reviewapp.audit.selectors import _CHAIN  # the very query verify runs

    sha256 = hashlib.sha256
    count = 0
    started = time.perf_counter()
    with transaction.atomic():
        connection.ensure_connection()
        with connection.connection.cursor(name="bench_baseline") as cursor:
            cursor.itersize = 10_000
            cursor.execute(_CHAIN)
            for row in cursor:
                sha256("|".join(map(str, row)).encode()).hexdigest()
                count += 1
    return time.perf_counter() - started, count


def measure_verify() -> tuple[float, int]:
    from reviewapp.audit.selectors import chain_verify

    started = time.perf_counter()
    report = chain_verify()
    seconds = time.perf_counter() - started
    if not report.ok:
        raise RuntimeError(f"the seeded chain does not verify: {report.reason}")
    return seconds, report.count


# --- The run --------------------------------------------------------------------------------------------

@dataclass
class Side:
    """One of the run's two databases: the baseline (held at the smallest size) or the one that grows."""

    db: BenchDatabase
    world: World
    people: list
    clients: dict


def use(db: BenchDatabase) -> None:
    """Point this process's Django connections (the main thread's and any thread's next) at ``db``."""
    from django.conf import settings
    from django.db import connections

    connections.close_all()
    settings.DATABASES["default"]["NAME"] = db.name  # the dict every new connection is made from
    if _one("SELECT current_database()")[0] != db.name:
        raise RuntimeError(f"could not switch to {db.name}")


def _migrate(db: BenchDatabase, copy: BenchDatabase) -> None:
    """``db`` migrated, the policies loaded (as `make run` does), and ``copy`` made from it (a file copy)."""
    env = db.env()
    manage(env, "migrate", "--verbosity", "0", "--skip-checks")
    manage(env, "load_policies", "--verbosity", "0")
    manage(env, "createcachetable", "--verbosity", "0")
    with db._admin() as conn:
        conn.execute(f'CREATE DATABASE "{copy.name}" TEMPLATE "{db.name}"')
    os.environ.update(env)
    import django

    django.setup()


def _prepare(db: BenchDatabase) -> Side:
    """The benchmark's staff, detector and batch in ``db`` (the same rows, so the same ids, in both databases)."""
    use(db)
    from django.test import Client

    from flags.models import FlagBatch
    from flags.services import detector_ensure
    from reviewapp.audit.services import SYSTEM
    from reviewapp.people.roles import Role
    from reviewapp.people.services import staff_create
    from reviewapp.policy.models import Clause

    detector = detector_ensure(actor=SYSTEM, slug="bench-detector", name="Distillation watch (benchmark)")
    batch = FlagBatch.objects.create(detector=detector, source=FlagBatch.Source.FILE)
    clause = Clause.objects.filter(permitted_actions__len__gt=0).order_by("version_id", "position").first()
    claimers = [staff_create(actor=SYSTEM, username=f"bench-claimer-{n}", role=Role.REVIEWER, password=PASSWORD)[0]
                for n in range(CLAIMERS)]
    officer, _ = staff_create(actor=SYSTEM, username="bench-officer", role=Role.COMPLIANCE_OFFICER, password=PASSWORD)
    world = World(detector_id=detector.pk, batch_id=batch.pk, policy_version_id=clause.version_id,
                  clause_id=clause.pk, action=clause.permitted_actions[0], decider_id=claimers[0].pk)
    clients = {"reviewer": Client(), "officer": Client()}
    clients["reviewer"].force_login(claimers[0])
    clients["officer"].force_login(officer)
    return Side(db, world, claimers, clients)


def _ratio(value: float, base: float, goal: float) -> str:
    ratio = value / base if base else float("inf")
    return f"{ratio:.2f}×  goal ≤ {goal:g}×: {'met' if ratio <= goal else 'MISSED'}"


@dataclass
class Measured:
    """One size's figures and, measured in alternation with them, the baseline's."""

    claims: Latencies = field(default_factory=Latencies)
    pages: dict = field(default_factory=lambda: {page: Latencies() for page in PAGES})

    def add(self, claims: Latencies, pages: dict[str, Latencies]) -> None:
        self.claims.seconds += claims.seconds
        for page, result in pages.items():
            self.pages[page].seconds += result.seconds
            self.pages[page].queries = result.queries


def measure_rounds(sides: list[Side], size: int, *, claimers: int, claims: int, requests: int,
                   rounds: int) -> list[Measured]:
    """``rounds`` rounds, each measuring every side in turn (claims, then the pages); each side's figures pooled."""
    for side in sides:
        use(side.db)
        settle(side.db, side.people[:claimers])
    measured = [Measured() for _ in sides]
    for round_ in range(rounds):
        for side, into in zip(sides, measured, strict=True):
            use(side.db)
            result = measure_claims(side.people[:claimers], claims)
            claims_put_back(side.db)
            into.add(result, measure_pages(side.clients, side.world, requests, seed=size * 10 + round_))
    return measured


def run(sizes: list[int], *, claimers: int, claims: int, requests: int, verify_rounds: int, rounds: int = 2,
        keep: bool = False, keep_database: bool = False) -> list[str]:
    from bench.main import machine
    from bench.stack import run_cleanup

    workdir = Path(tempfile.mkdtemp(prefix="reviewapp-bench-scale-"))
    server, maintenance_db = server_from_settings()
    db, base_db = BenchDatabase(server, maintenance_db, workdir), BenchDatabase(server, maintenance_db, workdir)
    base_db.name = f"{db.name}_base"
    base_db.url = server.url(base_db.name)
    if keep_database:  # for EXPLAIN afterwards (docs/); drop them by hand
        db.drop = lambda: log(f"kept database {db.name}")
        base_db.drop = lambda: log(f"kept database {base_db.name}")
    results: dict[int, Measured] = {}
    alongside: dict[int, Measured] = {}  # the baseline, in the rounds of each size
    baseline_pooled = Measured()
    grown: dict[int, float] = {}
    loads: dict[int, float] = {}
    verify: list[float] = []
    baseline: list[float] = []
    events = 0
    per_round_claims, per_round_requests = max(3, claims // rounds + 2), max(1, requests // rounds)
    try:
        db.create()
        log(f"created database {db.name}")
        _migrate(db, base_db)
        log(f"created database {base_db.name} from it")
        base, big = _prepare(base_db), _prepare(db)
        if [p.pk for p in base.people] != [p.pk for p in big.people]:
            raise RuntimeError("the two databases' staff differ")
        log(f"the baseline database: {sizes[0]:,} open cases, flags and seeded audit events")
        grown[sizes[0]] = grow(base_db, base.world, sizes[0])
        for size in sizes[1:] or sizes[:1]:
            sides = [base, big] if size != sizes[0] else [base]
            if size != sizes[0]:
                log(f"growing to {size:,} open cases, flags and seeded audit events")
                grown[size] = grow(db, big.world, size)
            log(f"  {rounds} rounds, each {sizes[0]:,} then {size:,}: claim-next ({claimers} claimers × "
                f"{per_round_claims}) and the pages ({per_round_requests} requests each)")
            loads[size] = os.getloadavg()[0]
            measured = measure_rounds(sides, size, claimers=claimers, claims=per_round_claims,
                                      requests=per_round_requests, rounds=rounds)
            baseline_pooled.add(measured[0].claims, measured[0].pages)
            results[size] = measured[-1]
            alongside[size] = measured[0]
            log(f"  claims {results[size].claims.text()} (baseline in the same rounds {measured[0].claims.text()})")
        use(big.db if len(sizes) > 1 else base.db)
        for round_ in range(1, verify_rounds + 1):
            log(f"verify round {round_}/{verify_rounds}: the bare read-and-hash, then chain_verify")
            seconds, events = measure_baseline()
            baseline.append(seconds)
            seconds, verified = measure_verify()
            if verified != events:
                raise RuntimeError(f"verify read {verified:,} events, the baseline {events:,}")
            verify.append(seconds)
        first = sizes[0]
        lines = [f"Scale: the hot paths at {', '.join(f'{s:,}' for s in sizes)} open cases (and as many flags and "
                 f"seeded audit events; {DECIDED_EVERY}th as many decisions), PostgreSQL "
                 f"{_one('SHOW server_version')[0]}, {machine()}. Two databases: the baseline held at {first:,} and "
                 f"one grown to each size; each size measured in {rounds} rounds alternating with the baseline "
                 f"(a busy moment of the shared machine hits both); ratio = p95 at the size / the baseline's p95 in "
                 f"the same rounds"]
        lines.append(f"  claim-next, {claimers} concurrent claimers (threads, own connections) × "
                     f"{per_round_claims - 2} counted claims a round, extraction queue (60 % of the open cases):")
        lines.append(f"    {first:>9,} open  {baseline_pooled.claims.text()}   baseline, all its rounds  (seeded in "
                     f"{grown[first]:.0f} s)")
        for size in sizes[1:]:
            here, there = results[size].claims, alongside[size].claims
            lines.append(f"    {size:>9,} open  {here.text()}   baseline p95 {there.p95 * 1000:6.1f} ms   "
                         f"{_ratio(here.p95, there.p95, GOALS['claim'])}   (seeded in {grown[size]:.0f} s; load "
                         f"{loads[size]:.1f})")
        lines.append(f"  pages, Django's test client, {per_round_requests} requests a round each (signed in; DEBUG=0):")
        for page in PAGES:
            result = baseline_pooled.pages[page]
            lines.append(f"    {page:<18} {first:>9,}  {result.text()}   baseline, all its rounds")
            for size in sizes[1:]:
                here, there = results[size].pages[page], alongside[size].pages[page]
                lines.append(f"    {page:<18} {size:>9,}  {here.text()}   baseline p95 {there.p95 * 1000:6.1f} ms   "
                             f"{_ratio(here.p95, there.p95, GOALS['pages'])}")
        base_seconds, check = statistics.median(baseline), statistics.median(verify)
        lines.append(f"  verify_audit (selectors.chain_verify) over {events:,} events: {check:.1f} s "
                     f"({events / check:,.0f} events/s); baseline, one read of the same rows with SHA-256 of each "
                     f"row's bytes in Python: {base_seconds:.1f} s ({events / base_seconds:,.0f}/s); "
                     f"ratio {_ratio(check, base_seconds, GOALS['verify'])} (medians of {verify_rounds})")
        return lines
    finally:
        from django.apps import apps

        if apps.ready:
            from django.db import connections

            connections.close_all()
        base_db.drop()
        run_cleanup(db, workdir, keep=keep, what="the scale benchmark")


def print_report(sizes: str | None = None, quick: bool = False) -> int:
    """For `make bench` (bench/main.py): this benchmark in a process of its own, its report printed."""
    from bench.stack import print_subprocess_report

    args = ["--scale-sizes", sizes] if sizes else []
    return print_subprocess_report("Scale", "bench.scale", *args, *(["--quick"] if quick else []))


def _sizes(text: str) -> list[int]:
    sizes = sorted({int(part.replace("_", "").replace(",", "")) for part in text.split(",") if part.strip()})
    if not sizes or sizes[0] < 100:
        raise argparse.ArgumentTypeError("sizes of at least 100, e.g. 10000,100000,1000000")
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale-sizes", type=str, default=None,
                        help="open cases (and flags, audit events) at each step, comma-separated "
                             "(default 10000,100000,1000000; with --quick 1000,3000)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: small sizes, 6 claims per claimer, 5 requests a page")
    parser.add_argument("--claimers", type=int, default=CLAIMERS, help=f"concurrent claimers (default {CLAIMERS})")
    parser.add_argument("--claims", type=int, help=f"claims per claimer and size (default {CLAIMS})")
    parser.add_argument("--requests", type=int, help=f"requests per page and size (default {REQUESTS})")
    parser.add_argument("--verify-rounds", type=int, default=1, help="rounds of the verify measure (default 1)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds per size, each alternating with the baseline database (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--keep-database", action="store_true",
                        help="keep the benchmark's database (its name is printed) to EXPLAIN queries in it")
    args = parser.parse_args()
    default_sizes = ",".join(map(str, QUICK_SIZES if args.quick else SIZES))
    sizes = _sizes(args.scale_sizes or default_sizes)
    claims = args.claims or (6 if args.quick else CLAIMS)
    requests = args.requests or (5 if args.quick else REQUESTS)
    if args.claimers > CLAIMERS:
        parser.error(f"at most {CLAIMERS} claimers")
    print("\n".join(run(sizes, claimers=args.claimers, claims=max(claims, 3), requests=requests,
                        verify_rounds=args.verify_rounds, rounds=args.rounds, keep=args.keep,
                        keep_database=args.keep_database)))


if __name__ == "__main__":
    main()
