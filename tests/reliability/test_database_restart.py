"""PostgreSQL restarted under real traffic: clients get clean 503s, the app recovers by itself, nothing accepted
is lost and nothing is duplicated.

The stack, as on several machines against one database: a private PostgreSQL (pgserver's bundled binaries, a
temporary folder, a free port; so the machine's own server, which other tests use, is never touched), two
gunicorn instances on two ports, two Celery worker nodes (``-n`` names of their own) and a beat, on the machine's
Redis under queue names of this module's own: the only fault is the database's.

Each test prints ``FAULT db-restart …`` lines: what it killed, when (seconds since the test began), and the counts
it compared; the assertion messages say the same.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import requests

from tests.reliability.brokers import PrivateRedis, free_port
from tests.reliability.faults import FaultLog
from tests.support import ROOT, CeleryWorker

pytestmark = [pytest.mark.xdist_group("db-restart")]


@pytest.fixture(scope="module")
def broker_url(tmp_path_factory):
    """Redis, never the database under test: the session's Redis if it has one, else a private redis-server of
    this module's own (tests/reliability/brokers.py), so the embedded defaults need no Redis on the machine."""
    from django.conf import settings

    chosen = os.environ.get("DB_RESTART_BROKER_URL") or settings.CELERY_BROKER_URL
    if chosen.startswith("redis"):
        yield chosen
        return
    with PrivateRedis(tmp_path_factory.mktemp("db-restart-redis")) as redis:
        yield redis.url()


CLIENTS, BATCHES, BATCH = 3, 8, 200  # 4,800 flags through real HTTP
ACCOUNTS = 300
HTTP_TIMEOUT = 20.0  # seconds: a request that hangs fails the test
RETRY_AFTER = 1  # what the stack's 503s ask for (DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS)
DECISION = {"clauses": ["T-1"], "action": "warn", "rationale": "Templated extraction prompts at volume.",
            "facts_for_holder": "Your account sent 2,400 templated prompts in one day."}


# ── a private PostgreSQL from pgserver's binaries ───────────────────────────────────────────────────────────────

class PrivatePostgres:
    """initdb, start, stop and restart of a server of our own (pg_ctl), as root through pgserver's system user."""

    def __init__(self):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs, as in reviewapp.embedded
            from pgserver._commands import POSTGRES_BIN_PATH
        self.bin = POSTGRES_BIN_PATH
        # A folder of its own under /tmp (never pytest's, whose parents root keeps private).
        self.root = Path(tempfile.mkdtemp(prefix="reviewapp-db-restart-"))
        self.data, self.log = self.root / "pg", self.root / "postgres.log"
        self.port = free_port()
        self.user = None
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root: pgserver's own system user runs it
            import pwd

            from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

            self.user = "pgserver"
            ensure_user_exists(self.user)
            ensure_prefix_permissions(self.bin)
            ensure_folder_permissions(self.bin, 0o055)  # read and execute for the group and others, as pgserver does
            ensure_folder_permissions(self.bin.parent / "lib", 0o044)
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "--auth=trust", "-U", "postgres", "--encoding=utf8", "-N")

    def remove(self) -> None:
        if self.running():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, program: str, *args: str, timeout: float = 60) -> None:
        subprocess.run([str(self.bin / program), *args], check=True, user=self.user, timeout=timeout,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "30", *args)

    def start(self) -> None:
        # TCP on loopback only, no socket file; no fsync (nothing here tests a power cut).
        self._ctl("-l", str(self.log), "-o", f"-h 127.0.0.1 -p {self.port} -c unix_socket_directories='' "
                  "-c fsync=off -c full_page_writes=off -c max_connections=80", "start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "stop")

    def restart(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "-l", str(self.log), "restart")

    def running(self) -> bool:
        return subprocess.run([str(self.bin / "pg_ctl"), "-D", str(self.data), "status"], user=self.user,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0

    def url(self, database: str = "reviewapp") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.url(), autocommit=True, connect_timeout=5)

    def scalar(self, sql: str, *params):
        with self.connect() as conn:
            return conn.execute(sql, params).fetchone()[0]

    def rows(self, sql: str, *params) -> list[tuple]:
        with self.connect() as conn:
            return conn.execute(sql, params).fetchall()


# ── the stack: two web instances, two worker nodes and a beat ────────────────────────────────────────────────────

SEED = """
import datetime, json
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
call_command("createcachetable", verbosity=0)
from flags.services import detector_ensure, detector_token_create
from reviewapp.audit.services import SYSTEM
from reviewapp.people.roles import Role
from reviewapp.people.services import issue_api_token, staff_create
from reviewapp.policy.models import Clause, Policy, PolicyVersion

usage = Policy.objects.create(slug="test-policy", title="Test usage policy")
version = PolicyVersion.objects.create(policy=usage, number=1, source_path="test", source_sha256="0" * 64,
                                       title="Test usage policy", effective_from=datetime.date(2026, 1, 1),
                                       text="(test)")
Clause.objects.create(version=version, ref="T-1", position=1, title="Automated extraction",
                      text="Do not extract outputs at scale.", severity="high", evidence_retention_days=365,
                      permitted_actions=["no_violation", "warn", "rate_limit", "suspend"],
                      dsa_category="STATEMENT_CATEGORY_OTHER_VIOLATION_TC", evidence_required="Detector flags.")
detector = detector_ensure(actor=SYSTEM, slug="template-miner", name="Template miner", owner_team="T&S detection")
reviewer, _ = staff_create(actor=SYSTEM, username="reviewer-restart", role=Role.REVIEWER,
                           password="correct horse battery")
print(json.dumps({"detector_token": detector_token_create(actor=SYSTEM, detector=detector)[1],
                  "staff_token": issue_api_token(actor=reviewer, user=reviewer, name="restart test")[1]}))
"""


class _Process:
    """A child process in its own process group, its output in a log file; stopped group and all."""

    def __init__(self, command: list[str], env: dict[str, str], log_path: Path):
        self.log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 — closed in stop()
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    def stop(self) -> None:
        _stop_all([self.process])
        self.log.close()


def _stop_all(processes: list[subprocess.Popen | None], *, grace: float = 5.0) -> None:
    """SIGTERM to each process group at once, a few seconds' grace in all, then SIGKILL to whatever is left."""
    processes = [process for process in processes if process is not None]
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(max(0.1, deadline - time.monotonic()))
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the group: pool threads' children, gunicorn's workers
        process.wait(10)


@dataclass
class Stack:
    postgres: PrivatePostgres
    env: dict[str, str]
    web_urls: list[str]
    detector_token: str
    staff_token: str
    logs: Path
    processes: list = field(default_factory=list)

    def manage(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=timeout)

    def wait_until_grouped(self, *, timeout: float = 90) -> None:
        """Every flag in a case and every audit event sequenced, by the workers and beat alone."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pending = self.postgres.scalar("SELECT count(*) FROM flags_flag WHERE case_id IS NULL")
            unsequenced = self.postgres.scalar("SELECT count(*) FROM audit_auditevent WHERE seq IS NULL")
            if not pending and not unsequenced:
                return
            time.sleep(0.3)
        raise AssertionError(f"after {timeout:.0f} s, {pending} flag(s) still without a case and {unsequenced} audit "
                             f"event(s) unsequenced: the workers did not recover by themselves (logs in {self.logs})")

    def verify_audit(self) -> str:
        result = self.manage("verify_audit")
        assert result.returncode == 0, f"verify_audit failed after the restart:\n{result.stdout}\n{result.stderr}"
        verdict = [line for line in result.stdout.splitlines() if line.startswith("OK:")]
        assert verdict, f"verify_audit said nothing of an intact chain:\n{result.stdout}"
        return verdict[0][:60]


def _wait_for_http(url: str, process: subprocess.Popen, *, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None and time.monotonic() < deadline, f"{url} did not start; see its log"
        try:
            requests.get(f"{url}/healthz", timeout=5)
            return
        except requests.RequestException:
            time.sleep(0.2)


def _purge_queues(broker_url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(broker_url)
    try:
        keys = [key for pattern in (f"{prefix}*", f"_kombu.binding.{prefix}*") for key in client.scan_iter(pattern)]
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, broker_url):
    root = tmp_path_factory.mktemp("db-restart")
    logs = Path(os.environ.get("TEST_ARTIFACTS", ROOT / "test-artifacts"))
    logs.mkdir(parents=True, exist_ok=True)
    prefix = f"dbr{os.getpid()}-"
    setup = FaultLog("db-restart setup")
    postgres = PrivatePostgres()
    started: list = []
    try:
        postgres.start()
        setup.note(f"private PostgreSQL up on 127.0.0.1:{postgres.port}")
        with psycopg.connect(postgres.url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE reviewapp")
        env = {key: value for key, value in os.environ.items()
               if key not in ("DJANGO_ALLOW_ASYNC_UNSAFE", "CACHE_URL", "AUDIT_WITNESS_URL")}
        env.update({
            "DJANGO_SETTINGS_MODULE": "reviewapp.settings.test", "PYTHONPATH": str(ROOT),
            "DATABASE_URL": postgres.url(), "CELERY_BROKER_URL": broker_url, "CELERY_QUEUE_PREFIX": prefix,
            "REVIEWAPP_DATA_DIR": str(root / "data"), "AUDIT_CHECKPOINT_FILE": str(root / "checkpoints.jsonl"),
            "DATABASE_CONNECT_TIMEOUT_SECONDS": "2", "DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS": str(RETRY_AFTER),
            # Nobody listens at the enforcement address: deliveries wait (retried later), rows stay to be counted.
            "ENFORCEMENT_WEBHOOK_URL": f"http://127.0.0.1:{free_port()}/enforcement",
            "OUTBOX_RETRY_BASE_SECONDS": "60", "FLAGS_RECONCILE_INTERVAL_SECONDS": "2",
            "OUTBOX_RECONCILE_INTERVAL_SECONDS": "5", "FLAGS_GROUP_BATCH_SIZE": "500",
        })
        # One process migrates, creates the cache table and seeds (each Django start-up costs seconds).
        seeded = subprocess.run([sys.executable, "-c", SEED], cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=180)
        assert seeded.returncode == 0, f"migrating and seeding the private database failed:\n{seeded.stderr}"
        tokens = json.loads(seeded.stdout.strip().splitlines()[-1])
        setup.note("migrated and seeded")

        ports = [free_port(), free_port()]
        webs = [_Process([sys.executable, "-m", "gunicorn", "reviewapp.wsgi:application", "--bind", f"127.0.0.1:{port}",
                          "--workers", "1", "--worker-class", "gthread", "--threads", "4", "--graceful-timeout", "2",
                          "--access-logfile", "-"], env, logs / f"db-restart-web{i}-{os.getpid()}.log")
                for i, port in enumerate(ports, start=1)]
        started.extend(webs)
        started.append(_Process([sys.executable, "-m", "celery", "-A", "reviewapp", "beat", "--loglevel", "INFO",
                                 "--schedule", str(root / "beat-schedule")], env,
                                logs / f"db-restart-beat-{os.getpid()}.log"))
        nodes = [CeleryWorker(env, logs / f"db-restart-worker{i}-{os.getpid()}.log", concurrency=2,
                              name=f"dbr{i}-{os.getpid()}@%h") for i in (1, 2)]
        started.extend(nodes)
        starting = [threading.Thread(target=node.start, daemon=True) for node in nodes]  # both at once
        for thread in starting:
            thread.start()
        for thread in starting:
            thread.join(120)
        assert all(node.process and node.process.poll() is None for node in nodes), "a worker node did not start"
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        for url, web in zip(urls, webs, strict=True):
            _wait_for_http(url, web.process)
        setup.note("2 web instances, 2 worker nodes and beat up")
        yield Stack(postgres=postgres, env=env, web_urls=urls, detector_token=tokens["detector_token"],
                    staff_token=tokens["staff_token"], logs=logs)
    finally:
        with contextlib.suppress(Exception):
            _stop_all([process.process for process in started])
        for process in started:
            if isinstance(process, _Process):
                process.log.close()
        with contextlib.suppress(Exception):
            _purge_queues(broker_url, prefix)
        postgres.remove()


# ── clients ─────────────────────────────────────────────────────────────────────────────────────────────────────

@pytest.fixture
def running(stack):
    """The server is up when a test starts, whatever an earlier test left (one that failed mid-outage, say)."""
    if not stack.postgres.running():
        stack.postgres.start()
    return stack


@dataclass
class Tally:
    """Every answer the clients got, by status; what was accepted; what was retried."""

    statuses: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)  # a timeout, a refused connection, a 500: each fails the test
    accepted: dict[tuple[int, int], dict] = field(default_factory=dict)
    retries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)  # the test ended (failed): clients stop

    def count(self, status: int) -> None:
        with self.lock:
            self.statuses[status] += 1


def _batch(client: int, number: int) -> list[dict]:
    from tests.conftest import flag_payload

    first = (client * BATCHES + number) * BATCH
    return [flag_payload(f"dbr-{n}", account_id=f"acct_{n % ACCOUNTS}") for n in range(first, first + BATCH)]


def _post_until_accepted(stack: Stack, tally: Tally, client: int, number: int, *, deadline: float) -> None:
    """POST one batch; on a 503 wait Retry-After and send the same batch again (bounded), to the other instance."""
    body = json.dumps({"flags": _batch(client, number)})
    headers = {"Authorization": f"Bearer {stack.detector_token}", "Content-Type": "application/json"}
    for attempt in range(60):
        url = stack.web_urls[(client + number + attempt) % len(stack.web_urls)]
        try:
            response = requests.post(f"{url}/api/v1/flags/", data=body, headers=headers, timeout=HTTP_TIMEOUT)
        except requests.RequestException as exc:
            with tally.lock:
                tally.failures.append(f"client {client} batch {number}: {type(exc).__name__}: {exc}")
            return
        tally.count(response.status_code)
        if response.status_code in (200, 201):
            with tally.lock:
                tally.accepted[(client, number)] = response.json()
            return
        if response.status_code != 503 or time.monotonic() > deadline or tally.stop.is_set():
            with tally.lock:
                tally.failures.append(f"client {client} batch {number}: {response.status_code} {response.text[:200]}")
            return
        with tally.lock:
            if not response.json().get("detail", "").startswith("The database is unavailable"):
                tally.failures.append(f"client {client} batch {number}: a 503 of another kind: {response.text[:200]}")
                return
            tally.retries += 1
        time.sleep(min(float(response.headers.get("Retry-After", RETRY_AFTER)), 2.0))
    with tally.lock:
        tally.failures.append(f"client {client} batch {number}: still 503 after 60 attempts")


def _client(stack: Stack, tally: Tally, client: int, deadline: float) -> None:
    for number in range(BATCHES):
        if tally.stop.is_set():
            return
        _post_until_accepted(stack, tally, client, number, deadline=deadline)
        time.sleep(0.25)  # a detector's pace: the stream lasts long enough for the faults to land in it


def _wait(predicate, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def _ingestion_totals(stack: Stack) -> tuple[int, int, int]:
    """Stored batches, the flags they created, and their flags.ingested audit events."""
    return stack.postgres.rows("SELECT (SELECT count(*) FROM flags_flagbatch), "
                               "(SELECT coalesce(sum(created), 0) FROM flags_flagbatch), "
                               "(SELECT count(*) FROM audit_auditevent WHERE action = 'flags.ingested')")[0]


def _ingest_waiting_on_locks(stack: Stack) -> int:
    """Ingestion statements waiting for the held flags table lock: each is a request the restart answers 503.

    Only waits on a relation (the table lock), and only the statements that write flags (the direct COPY, the
    staged path's INSERT): a bare "any INSERT waiting on any lock" also counted, say, the database cache's INSERT of
    the grouping dedupe key waiting a moment on the other web's (a transaction lock, no client answer at stake),
    which asks for one 503 more than the restart can give.
    """
    return stack.postgres.scalar("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                 "AND wait_event = 'relation' AND (query LIKE 'COPY flags_flag %%' "
                                 "OR query LIKE '%%INSERT INTO flags_flag %%')")


def _probe_while_down(stack: Stack, log: FaultLog) -> None:
    """While the server is away: /healthz names the database, and a page is the plain 503 page."""
    health = requests.get(f"{stack.web_urls[0]}/healthz", timeout=HTTP_TIMEOUT)
    assert health.status_code == 503 and "database" in health.json()["down"], health.text
    page = requests.get(f"{stack.web_urls[1]}/", cookies={"sessionid": "a-session-to-look-up"}, timeout=HTTP_TIMEOUT,
                        allow_redirects=False)
    assert page.status_code == 503 and page.headers["Content-Type"].startswith("text/html"), page.text[:300]
    assert "Temporarily unavailable" in page.text and page.headers["Retry-After"] == str(RETRY_AFTER)
    log.note(f"while down: /healthz 503 down={health.json()['down']}; a page 503 text/html, "
             f"Retry-After {page.headers['Retry-After']}")


# ── the tests ───────────────────────────────────────────────────────────────────────────────────────────────────

@pytest.fixture
def tally():
    tally = Tally()
    yield tally
    tally.stop.set()


def test_restarts_during_ingestion_lose_nothing_and_duplicate_nothing(running, tally):
    stack = running
    log = FaultLog("db-restart ingestion")
    total = CLIENTS * BATCHES * BATCH
    before = _ingestion_totals(stack)  # another test of this module may have posted already
    deadline = time.monotonic() + 90
    clients = [threading.Thread(target=_client, args=(stack, tally, c, deadline), daemon=True) for c in range(CLIENTS)]
    log.note(f"{CLIENTS} clients start posting {BATCHES} batches of {BATCH} flags each ({total} flags) to "
             f"{len(stack.web_urls)} web instances")
    for thread in clients:
        thread.start()

    # Fault 1: stop (fast: every backend terminated, a COPY in progress included), stay down, start.
    _wait(lambda: len(tally.accepted) >= 4, timeout=30, what="4 batches accepted before the first fault")
    accepted_then = len(tally.accepted)
    stack.postgres.stop("fast")
    log.note(f"KILLED PostgreSQL: pg_ctl stop -m fast after {accepted_then} batches accepted")
    _probe_while_down(stack, log)
    down_since = time.monotonic()
    _wait(lambda: tally.statuses[503] >= CLIENTS and time.monotonic() - down_since >= 3, timeout=20,
          what="the clients to be answered 503 while the database is down")
    log.note(f"down {time.monotonic() - down_since:.1f} s; clients answered 503 {tally.statuses[503]} time(s); "
             "starting PostgreSQL")
    stack.postgres.start()
    log.note("PostgreSQL started again (pg_ctl start)")

    # Fault 2: a fast restart with ingestion requests in flight: another session holds flags_flag, so posts that
    # reach their COPY wait there mid-transaction (their batch row written) when the server goes down.
    _wait(lambda: len(tally.accepted) >= accepted_then + 4, timeout=40, what="4 more batches after the first fault")
    first_fault_503s = tally.statuses[503]
    holder = stack.postgres.connect()
    holder.execute("BEGIN")
    holder.execute("LOCK TABLE flags_flag IN EXCLUSIVE MODE")  # reads go on; writes wait
    _wait(lambda: _ingest_waiting_on_locks(stack) >= 1, timeout=15, what="an ingestion request to wait mid-transaction")
    waiting, accepted_then = _ingest_waiting_on_locks(stack), len(tally.accepted)
    stack.postgres.restart("fast")
    holder.close()
    log.note(f"KILLED PostgreSQL again: pg_ctl restart -m fast with {waiting} ingestion request(s) waiting "
             f"mid-transaction, after {accepted_then} batches accepted")

    for thread in clients:
        thread.join(max(1.0, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in clients), "a client is still posting past its deadline"
    statuses = dict(sorted(tally.statuses.items()))
    second_fault_503s = tally.statuses[503] - first_fault_503s
    log.note(f"answers by status {statuses} (503s: {first_fault_503s} around the stop, {second_fault_503s} from the "
             f"restart); retries of a 503'd batch {tally.retries}; "
             f"failures (timeouts, refused connections, 500s) {len(tally.failures)}")
    assert not tally.failures, f"every answer must be 201/200 or 503, never a hang or a 500: {tally.failures[:5]}"
    assert set(statuses) <= {200, 201, 503}, statuses
    assert first_fault_503s >= 1, "no 503 seen while the database was stopped: the fault missed the traffic"
    assert second_fault_503s >= waiting, (f"{waiting} request(s) were in flight at the restart but only "
                                          f"{second_fault_503s} 503(s) came after it")
    assert len(tally.accepted) == CLIENTS * BATCHES, f"{len(tally.accepted)} of {CLIENTS * BATCHES} batches accepted"
    for key, answer in tally.accepted.items():
        assert answer["created"] + answer["duplicates"] == BATCH and not answer["rejected"], (key, answer)
    created = sum(answer["created"] for answer in tally.accepted.values())
    replayed = sum(answer["duplicates"] for answer in tally.accepted.values())

    # A client that never got its answer sends the batch again: each client replays its first one once.
    replays = [requests.post(f"{stack.web_urls[c % 2]}/api/v1/flags/", data=json.dumps({"flags": _batch(c, 0)}),
                             headers={"Authorization": f"Bearer {stack.detector_token}",
                                      "Content-Type": "application/json"}, timeout=HTTP_TIMEOUT)
               for c in range(CLIENTS)]
    assert all(r.status_code == 200 and r.json()["created"] == 0 and r.json()["duplicates"] == BATCH
               for r in replays), [r.text[:200] for r in replays]
    log.note(f"replayed {CLIENTS} accepted batches: answered 200 with 0 created, {BATCH} duplicates each")

    stored = stack.postgres.scalar("SELECT count(*) FROM flags_flag WHERE external_id LIKE 'f-dbr-%%'")
    distinct = stack.postgres.scalar("SELECT count(DISTINCT external_id) FROM flags_flag WHERE external_id LIKE "
                                     "'f-dbr-%%'")
    batches, batch_created, ingested_events = (now - then for now, then in zip(_ingestion_totals(stack), before,
                                                                                  strict=True))
    log.note(f"flags posted {total}, stored {stored} ({distinct} distinct external ids); "
             f"the accepted answers count {created} created and {replayed} duplicates (a commit whose answer was "
             f"lost); stored batches {batches} "
             f"with {batch_created} created and {ingested_events} flags.ingested audit events")
    assert stored == distinct == total, f"posted {total} flags, stored {stored} ({distinct} distinct): lost or doubled"
    assert created + replayed == total, (f"the accepted answers count {created} created and {replayed} duplicates, "
                                         f"not {total} flags")
    assert batch_created == total, f"the stored batches created {batch_created} flags, not {total}: one twice?"
    assert ingested_events == batches, f"{batches} stored batches but {ingested_events} audit events: half-committed?"

    stack.wait_until_grouped()
    per_account = stack.postgres.rows("SELECT account_external_id, count(DISTINCT case_id) FROM flags_flag "
                                      "WHERE external_id LIKE 'f-dbr-%%' GROUP BY 1")
    assert len(per_account) == ACCOUNTS and all(cases == 1 for _, cases in per_account), (
        f"every account's flags in exactly one case: {[row for row in per_account if row[1] != 1][:5]}")
    mismatched = stack.postgres.rows("""
        SELECT c.id, c.flag_count, c.total_requests, count(f.id), coalesce(sum(f.request_count), 0)
        FROM cases_case c LEFT JOIN flags_flag f ON f.case_id = c.id GROUP BY c.id
        HAVING c.flag_count <> count(f.id) OR c.total_requests <> coalesce(sum(f.request_count), 0)""")
    cases = stack.postgres.scalar("SELECT count(*) FROM cases_case")
    verified = stack.verify_audit()
    log.note(f"after recovery: {cases} cases for {ACCOUNTS} accounts, {len(mismatched)} with counts unlike a "
             f"recomputation; verify_audit: {verified}")
    assert not mismatched, f"case counts unlike a recomputation (id, flag_count, total_requests, real…): {mismatched}"


def _api(stack: Stack, method: str, path: str, *, web: int = 0, **kwargs) -> requests.Response:
    return requests.request(method, f"{stack.web_urls[web]}{path}", timeout=HTTP_TIMEOUT,
                            headers={"Authorization": f"Token {stack.staff_token}"}, **kwargs)


def _decision_rows(stack: Stack, case_id: int) -> dict[str, int]:
    decisions = [row[0] for row in stack.postgres.rows("SELECT id FROM cases_decision WHERE case_id = %s", case_id)]
    ids = [str(pk) for pk in decisions]
    return {
        "decisions": len(decisions),
        "decision.recorded events": stack.postgres.scalar(
            "SELECT count(*) FROM audit_auditevent WHERE action = 'decision.recorded' AND target_id = ANY(%s)", ids),
        "decision.enforced events": stack.postgres.scalar(
            "SELECT count(*) FROM audit_auditevent WHERE action = 'decision.enforced' AND target_id = ANY(%s)", ids),
        "statements": stack.postgres.scalar(
            "SELECT count(*) FROM cases_statementofreasons WHERE decision_id = ANY(%s)", decisions),
        "enforcement outbox rows": stack.postgres.scalar(
            "SELECT count(*) FROM outbox_outboxmessage WHERE kind = 'enforcement' AND target_id = ANY(%s)", ids),
    }


def test_a_decision_through_a_restart_is_recorded_once(running):
    stack = running
    log = FaultLog("db-restart decision")
    from tests.conftest import flag_payload

    flags = {"flags": [flag_payload(f"decide-{n}", account_id="acct_decide") for n in (1, 2)]}
    posted = requests.post(f"{stack.web_urls[1]}/api/v1/flags/", json=flags, timeout=HTTP_TIMEOUT,
                           headers={"Authorization": f"Bearer {stack.detector_token}"})
    assert posted.status_code == 201, posted.text
    stack.wait_until_grouped()
    case_id = stack.postgres.scalar("SELECT c.id FROM cases_case c JOIN cases_account a ON a.id = c.account_id "
                                    "WHERE a.external_id = 'acct_decide'")
    claimed = _api(stack, "POST", f"/api/v1/cases/{case_id}/claim")
    assert claimed.status_code == 200, claimed.text
    path = f"/api/v1/cases/{case_id}/decisions"
    statuses: Counter = Counter()

    # In flight: the decision waits on the case row (held by another session) when the server shuts down fast.
    holder = stack.postgres.connect()
    holder.execute("BEGIN")
    holder.execute("SELECT 1 FROM cases_case WHERE id = %s FOR UPDATE", [case_id])
    in_flight: list = []
    request = threading.Thread(target=lambda: in_flight.append(_api(stack, "POST", path, json=DECISION)), daemon=True)
    request.start()
    _wait(lambda: stack.postgres.scalar("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                        "AND query LIKE '%%cases_case%%FOR NO KEY UPDATE%%'") >= 1,
          timeout=15, what="the decision to wait on the case row")
    stack.postgres.stop("fast")
    log.note(f"KILLED PostgreSQL: pg_ctl stop -m fast while the decision on case {case_id} waited in its transaction")
    request.join(HTTP_TIMEOUT + 5)
    holder.close()
    assert not request.is_alive() and in_flight, "the decision in flight hung when the database went away"
    statuses[in_flight[0].status_code] += 1
    assert in_flight[0].status_code == 503, f"the decision in flight was answered {in_flight[0].status_code}"

    # Down: the reviewer's retry is 503 at once, from either instance.
    for web in (0, 1):
        retry = _api(stack, "POST", path, json=DECISION, web=web)
        statuses[retry.status_code] += 1
        assert retry.status_code == 503 and retry.headers["Retry-After"] == str(RETRY_AFTER), retry.text
    log.note(f"while down: decision retries answered {dict(statuses)}")
    stack.postgres.start()
    log.note("PostgreSQL started again (pg_ctl start)")

    # Up: the same decision again, until accepted (the first request after a restart may still meet it starting).
    for _attempt in range(20):
        answer = _api(stack, "POST", path, json=DECISION, web=1)
        statuses[answer.status_code] += 1
        if answer.status_code != 503:
            break
        time.sleep(RETRY_AFTER)
    assert answer.status_code == 201, answer.text
    replay = _api(stack, "POST", path, json=DECISION)
    statuses[replay.status_code] += 1
    assert replay.status_code in (403, 409), f"a replay of the recorded decision must be refused: {replay.text}"

    rows = _decision_rows(stack, case_id)
    state = stack.postgres.scalar("SELECT state FROM cases_case WHERE id = %s", case_id)
    decision_state = stack.postgres.scalar("SELECT state FROM cases_decision WHERE case_id = %s", case_id)
    stack.wait_until_grouped()
    verified = stack.verify_audit()
    log.note(f"answers {dict(statuses)}; rows {rows}; case {state}, decision {decision_state}; "
             f"verify_audit: {verified}")
    assert rows == {"decisions": 1, "decision.recorded events": 1, "decision.enforced events": 1, "statements": 1,
                    "enforcement outbox rows": 1}, f"the decision, its events and its outbox row once each: {rows}"
    assert state == "decided" and decision_state == "enforced", (state, decision_state)
