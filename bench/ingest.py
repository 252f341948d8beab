"""The ingestion half of the benchmark: realistic flags, the benchmark's database, and the ways in.

- ``generate`` writes N schema-v1 flags (default 24,000 accounts, the campaign of the news report);
- ``BenchDatabase`` is a fresh database (``reviewapp_bench_<pid>``) on the server the settings point at
  (``DATABASE_URL``, else the embedded PostgreSQL), migrated, dropped at the end whatever happens;
- (a) ``measure_copy``: raw PostgreSQL COPY of the rows (parsed beforehand) into a bare table with
  flags_flag's columns and no index or key — the baseline every figure is a ratio to;
- (b) ``measure_http``: ``POST /api/v1/flags/`` in batches of 1,000 from several client threads against a
  real gunicorn; ``BackgroundIngest`` keeps posting fresh flags while something else is measured;
- (c) ``run_ingest_flags``: ``manage.py ingest_flags FILE --detector …`` as a subprocess, end to end.

Celery tasks go to the broker the settings give (``CELERY_BROKER_URL``, else kombu's SQLAlchemy
transport in the benchmark's database) under a ``bench<pid>-`` queue prefix. bench/main.py runs the
measures; bench/stack.py starts the real stack; bench/review.py is the decision load.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import msgspec

ROOT = Path(__file__).resolve().parent.parent
DETECTOR = "bench-detector"
MEMORY_GOAL_MB = 300
MEMORY_FLAGS = 1_000_000


_STARTED = time.monotonic()


def log(message: str) -> None:
    """Progress on stderr, with the seconds since the benchmark started."""
    print(f"· {time.monotonic() - _STARTED:6.1f} s  {message}", file=sys.stderr, flush=True)


# --- Realistic flags --------------------------------------------------------------------------------

ACCOUNTS = 24_000  # the campaign of the news report: ~24,000 fake accounts
CLUSTERS = 120
CLUSTERED_SHARE = 0.6  # of the accounts; the rest are ordinary heavy users and a few researchers
SEED = 20250301
SIGNAL_WEIGHTS = {
    "templated_prompts": 30, "account_cluster": 20, "volume_anomaly": 20,
    "capability_sweep": 10, "reasoning_extraction": 12, "output_harvesting": 8,
}
TASKS = ["prove the lemma", "translate the contract clause", "refactor this function", "rank these answers",
         "explain the diagnosis", "summarise the filing", "solve the integral", "write the unit tests"]
TEMPLATES = [
    "Think step by step and show every intermediate step before answering: {task} (item {n})",
    "You are an expert. {task}. Output your full reasoning, then the final answer. Case #{n}",
    "Q{n}: {task}. Answer in JSON with fields reasoning, answer, confidence.",
]


def generate(path: Path, count: int, *, accounts: int = ACCOUNTS, seed: int = SEED) -> int:
    """Write ``count`` schema-v1 flags for ``accounts`` accounts as JSON lines; return the file size in bytes."""
    rng = random.Random(seed)
    encode = msgspec.json.Encoder().encode
    cluster_of = {a: f"clu-{rng.randrange(CLUSTERS):04d}" for a in range(int(accounts * CLUSTERED_SHARE))}
    signals, weights = list(SIGNAL_WEIGHTS), list(SIGNAL_WEIGHTS.values())
    start = datetime(2025, 3, 1, tzinfo=UTC)
    with open(path, "wb") as out:
        for i in range(count):
            account = rng.randrange(accounts)
            signal = rng.choices(signals, weights)[0]
            observed_from = start + timedelta(seconds=rng.randrange(30 * 86400))
            observed_to = observed_from + timedelta(seconds=rng.randrange(600, 86400))
            flag = {
                "external_id": f"dw-{seed}-{i:09d}",
                "detector": DETECTOR,
                "detector_version": rng.choice(["2.3.1", "2.4.0"]),
                "account_id": f"acct_{account:06d}",
                "signal": signal,
                "score": round(rng.betavariate(5, 2), 4),
                "observed_from": observed_from.isoformat().replace("+00:00", "Z"),
                "observed_to": observed_to.isoformat().replace("+00:00", "Z"),
            }
            if account % 7:
                flag["organization_id"] = f"org_{account // 25:04d}"
            if rng.random() < 0.8:
                flag["request_count"] = rng.randrange(200, 400_000)
            if account in cluster_of:
                flag["cluster_id"] = cluster_of[account]
            flag["evidence"] = _evidence(rng, signal, account)
            out.write(encode(flag) + b"\n")
    return path.stat().st_size


EXTERNAL_ID_PREFIX = f'"dw-{SEED}-'.encode()


def renamed(data: bytes, generation: int) -> bytes:
    """The same flags (lines or request bodies) under new external ids: fresh flags for the same accounts."""
    return data.replace(EXTERNAL_ID_PREFIX, f'"g{generation:04d}-{SEED}-'.encode())


def _evidence(rng: random.Random, signal: str, account: int) -> dict:
    evidence: dict = {"window": "1h", "sample_size": rng.randrange(50, 5000)}
    if signal in {"templated_prompts", "reasoning_extraction", "capability_sweep"} and rng.random() < 0.6:
        template = rng.choice(TEMPLATES)
        evidence["template_hash"] = hashlib.sha1(template.encode(), usedforsecurity=False).hexdigest()[:16]
        evidence["excerpts"] = [template.format(task=rng.choice(TASKS), n=rng.randrange(100_000))
                                for _ in range(rng.choice([1, 2, 2, 3]))]
    elif signal == "volume_anomaly":
        evidence["requests_per_hour"] = rng.randrange(2_000, 60_000)
        evidence["peer_p99"] = rng.randrange(300, 1_500)
    elif signal == "account_cluster":
        evidence["shared"] = rng.sample(["payment_fingerprint", "ip_block", "signup_burst", "user_agent"], k=2)
        evidence["cluster_size"] = rng.randrange(20, 400)
    else:
        evidence["task_coverage"] = round(rng.random(), 3)
    return evidence


# --- The database server and the benchmark's own database -------------------------------------------

@dataclass(frozen=True)
class Server:
    user: str
    password: str
    host: str
    port: str

    def url(self, name: str) -> str:
        password = f":{quote(self.password, safe='')}" if self.password else ""
        port = f":{self.port}" if self.port else ""
        return f"postgresql://{quote(self.user, safe='')}{password}@{quote(self.host, safe='')}{port}/{name}"

    def broker_url(self, name: str) -> str:
        """The default broker (kombu's SQLAlchemy transport) in database ``name``; a unix socket goes in the query."""
        if self.host.startswith("/"):
            port = f"&port={self.port}" if self.port else ""
            return f"sqla+postgresql+psycopg://{quote(self.user, safe='')}@/{name}?host={self.host}{port}"
        return "sqla+" + self.url(name).replace("postgresql://", "postgresql+psycopg://", 1)

    def connect(self, name: str, **kwargs):
        import psycopg

        return psycopg.connect(dbname=name, user=self.user, password=self.password or None,
                               host=self.host or None, port=self.port or None, **kwargs)


def server_from_settings() -> tuple[Server, str]:
    """The server (and its usual database) that reviewapp's settings would use."""
    url = os.environ.get("DATABASE_URL")
    if url:
        import dj_database_url

        db = dj_database_url.parse(url)
        return Server(db["USER"] or "", db["PASSWORD"] or "", db["HOST"] or "", str(db["PORT"] or "")), db["NAME"]
    from reviewapp.embedded import DATABASE_NAME, USER, ensure_running

    data_dir = Path(os.environ.get("REVIEWAPP_DATA_DIR", ROOT / ".data"))
    embedded = ensure_running(data_dir)
    return Server(USER, "", str(embedded.socket_dir), str(embedded.port)), DATABASE_NAME


class BenchDatabase:
    """A fresh database on the same server, created, migrated, and dropped at the end whatever happens."""

    def __init__(self, server: Server, maintenance_db: str, workdir: Path):
        self.server = server
        self.maintenance_db = maintenance_db
        self.name = f"reviewapp_bench_{os.getpid()}"
        self.url = server.url(self.name)
        self.workdir = workdir
        # The demo's enforcement receiver and SMTP sink (started with the real stack) on free ports.
        self.receiver_port, self.smtp_port = free_port(), free_port()

    def _admin(self):
        for name in ("postgres", self.maintenance_db):
            try:
                return self.server.connect(name, autocommit=True)
            except Exception:  # noqa: S112 — try the settings' own database next
                continue
        raise RuntimeError("cannot connect to the PostgreSQL server to create the benchmark database")

    def create(self) -> None:
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if key != "DJANGO_ALLOW_ASYNC_UNSAFE"}
        env.update({
            "DJANGO_SETTINGS_MODULE": "reviewapp.settings.dev",
            "DEBUG": "0",
            "DATABASE_URL": self.url,
            # The broker the settings give: CELERY_BROKER_URL, else the default (SQLAlchemy transport) in
            # this same database. Our own queue prefix either way: nothing else consumes these queues.
            "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL") or self.server.broker_url(self.name),
            "CELERY_QUEUE_PREFIX": f"bench{os.getpid()}-",
            # Beat's schedule, the secret key, audit checkpoints: in the work folder, not the checkout's .data/.
            "REVIEWAPP_DATA_DIR": str(self.workdir / "data"),
            "ENFORCEMENT_WEBHOOK_URL": f"http://127.0.0.1:{self.receiver_port}/enforcement",
            "EMAIL_PORT": str(self.smtp_port),
            # Reviewers sign in from 127.0.0.1 several times a run.
            "LOGIN_RATE_LIMIT": "10000/m",
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
        })
        return env

    def execute(self, *statements: str) -> None:
        with self.server.connect(self.name, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)


def manage(env: dict[str, str], *args: str, capture: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=False,
                          capture_output=capture, text=True)
    if done.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done


def prepare_app(db: BenchDatabase) -> tuple[int, str]:
    """Migrate, create the detector and a token; return (detector id, token)."""
    env = db.env()
    manage(env, "migrate", "--verbosity", "0")
    manage(env, "load_policies", "--verbosity", "0")  # as `make run` does
    manage(env, "createcachetable", "--verbosity", "0")
    os.environ.update(env)
    import django

    django.setup()
    from flags.services import detector_ensure, detector_token_create
    from flags.tasks import group_pending_flags
    from reviewapp.audit.services import SYSTEM

    detector = detector_ensure(actor=SYSTEM, slug=DETECTOR, name="Distillation watch (benchmark)")
    _, token = detector_token_create(actor=SYSTEM, detector=detector)
    # The broker's tables are created at its first use; do it here, not racing in four web workers.
    group_pending_flags.delay()
    from django.db import connections

    connections.close_all()
    return detector.pk, token


# --- (a) the baseline: COPY -------------------------------------------------------------------------

_COPY_COLUMNS = (
    "id", "detector_id", "external_id", "schema_version", "detector_version", "account_external_id",
    "organization_id", "signal", "score", "observed_from", "observed_to", "request_count", "cluster_id",
    "evidence", "content_hash", "batch_id", "received_at", "case_id",
)


def prepare_rows(path: Path, detector_id: int) -> list[tuple]:
    """The flags as flags_flag rows, parsed and typed beforehand (not timed)."""
    decode, encode = msgspec.json.decode, msgspec.json.encode
    now = datetime.now(UTC)
    rows = []
    with open(path, "rb") as lines:
        for number, line in enumerate(lines, start=1):
            f = decode(line)
            evidence = f.get("evidence")
            rows.append((
                number, detector_id, f["external_id"], 1, f["detector_version"], f["account_id"],
                f.get("organization_id", ""), f["signal"], f["score"],
                datetime.fromisoformat(f["observed_from"]), datetime.fromisoformat(f["observed_to"]),
                f.get("request_count"), f.get("cluster_id", ""),
                encode(evidence).decode() if evidence is not None else None,
                hashlib.sha256(line).hexdigest(), 1, now, None,
            ))
    return rows


def measure_copy(db: BenchDatabase, rows: list[tuple], *, table: str = "bench_raw_copy",
                 columns: tuple[str, ...] = _COPY_COLUMNS) -> float:
    """COPY the rows in one transaction; the bare table (no index, no key) is created here."""
    if table == "bench_raw_copy":
        db.execute("DROP TABLE IF EXISTS bench_raw_copy", "CREATE TABLE bench_raw_copy (LIKE flags_flag)")
    db.execute("CHECKPOINT")
    with db.server.connect(db.name) as conn:
        started = time.perf_counter()
        with conn.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        elapsed = time.perf_counter() - started
        (stored,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    if stored != len(rows):
        raise RuntimeError(f"COPY stored {stored} rows of {len(rows)}")
    return elapsed


def measure_copy_into_flags(db: BenchDatabase, rows: list[tuple]) -> float:
    """For reference, not a goal: the same COPY straight into flags_flag with its indexes and constraints."""
    with db.server.connect(db.name) as conn:
        (batch,) = conn.execute("SELECT min(id) FROM flags_flagbatch").fetchone()
    batch_at = _COPY_COLUMNS.index("batch_id")
    typed = [(*row[1:batch_at], batch, *row[batch_at + 1:]) for row in rows]  # the table numbers its rows
    db.execute("TRUNCATE flags_flag, flags_flagkey CASCADE")
    elapsed = measure_copy(db, typed, table="flags_flag", columns=_COPY_COLUMNS[1:])
    db.execute("TRUNCATE flags_flag, flags_flagkey CASCADE")
    return elapsed


# --- (b) the HTTP API over gunicorn -----------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class WebServer:
    def __init__(self, env: dict[str, str], workers: int, log_path: Path):
        self.env, self.workers, self.log_path = env, workers, log_path
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> WebServer:
        self._log = open(self.log_path, "w")  # closed in __exit__
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "reviewapp.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
             "--workers", str(self.workers), "--graceful-timeout", "5", "--timeout", "120"],
            cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=5) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"gunicorn did not answer /healthz; see {self.log_path}")

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()


def post(port: int, token: str, body: bytes) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("POST", "/api/v1/flags/", body=body, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read() or b"{}")
    finally:
        connection.close()


def batches(path: Path, size: int) -> list[bytes]:
    bodies, lines = [], []
    with open(path, "rb") as stream:
        for line in stream:
            lines.append(line.rstrip(b"\n"))
            if len(lines) == size:
                bodies.append(b'{"flags":[' + b",".join(lines) + b"]}")
                lines = []
    if lines:
        bodies.append(b'{"flags":[' + b",".join(lines) + b"]}")
    return bodies


def warm_up(port: int, workers: int, token: str, path: Path) -> None:
    """Load the views, open the database and broker connections in every worker: one-flag posts.

    What they store is gone before the first measure (``measure_http`` starts with a TRUNCATE).
    """
    with open(path, "rb") as lines:
        for _ in range(3 * workers):
            status, answer = post(port, token, next(lines))
            if status != 201:
                raise RuntimeError(f"warm-up answered {status}: {answer}")


@dataclass
class HttpRun:
    seconds: float  # first request to last answer
    first_post: float  # time.monotonic() when the first request went out
    last_answer: float  # time.monotonic() when the last answer came back


def measure_http(db: BenchDatabase, port: int, token: str, bodies: list[bytes], *, clients: int,
                 expected: int, truncate: bool = True) -> HttpRun:
    """Post every body from ``clients`` threads; the clock runs from the first request to the last answer."""
    if truncate:
        db.execute("TRUNCATE flags_flag, flags_flagkey CASCADE")
    db.execute("CHECKPOINT")
    pending = list(reversed(bodies))
    lock = threading.Lock()
    totals = {"created": 0, "errors": []}

    def client() -> None:
        while True:
            with lock:
                if not pending:
                    return
                body = pending.pop()
            status, answer = post(port, token, body)
            with lock:
                if status not in (200, 201):
                    totals["errors"].append(f"{status}: {str(answer)[:200]}")
                totals["created"] += answer.get("created", 0)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    first_post = time.monotonic()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    last_answer = time.monotonic()
    if totals["errors"] or totals["created"] != expected:
        raise RuntimeError(f"HTTP created {totals['created']} of {expected}; errors: {totals['errors'][:3]}")
    return HttpRun(elapsed, first_post, last_answer)


class BackgroundIngest:
    """Keeps ``clients`` threads posting fresh flags (the same bodies under new external ids) until stopped."""

    def __init__(self, port: int, token: str, bodies: list[bytes], *, clients: int, generation: int = 100):
        self.port, self.token, self.bodies, self.clients = port, token, bodies, clients
        self.generation = generation
        self.created = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._queue: list[bytes] = []
        self._threads: list[threading.Thread] = []

    def _next(self) -> bytes:
        with self._lock:
            if not self._queue:
                self.generation += 1
                self._queue = [renamed(body, self.generation) for body in reversed(self.bodies)]
            return self._queue.pop()

    def _client(self) -> None:
        while not self._stop.is_set():
            status, answer = post(self.port, self.token, self._next())
            with self._lock:
                if status not in (200, 201):
                    self.errors.append(f"{status}: {str(answer)[:200]}")
                    return
                self.created += answer.get("created", 0)

    def __enter__(self) -> BackgroundIngest:
        self.started = time.perf_counter()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(self.clients)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self.seconds = time.perf_counter() - self.started
        if self.errors and exc[0] is None:
            raise RuntimeError(f"background ingestion failed: {self.errors[:3]}")


# --- (c) manage.py ingest_flags ---------------------------------------------------------------------

_COUNT = re.compile(r"^(created|duplicates|conflicts|rejected): (\d+)", re.MULTILINE)
_OWN_TIME = re.compile(r"^\d+ lines read from .* in ([\d.]+) s", re.MULTILINE)


def run_ingest_flags(db: BenchDatabase, path: Path, *options: str, expect: dict[str, int],
                     memory: bool = False) -> tuple[float, float, int]:
    """Run the command, check the counts it prints.

    Returns seconds end to end, seconds the command itself reports (without interpreter and Django start-up),
    and the peak RSS in kB (0 when not measured).
    """
    command = [sys.executable, "manage.py", "ingest_flags", str(path), "--detector", DETECTOR,
               "--rejected", str(path.with_suffix(".rejected.jsonl")), *options]
    time_v = shutil.which("time", path="/usr/bin") if memory else None
    if time_v:
        command = [time_v, "-v", *command]
    db.execute("CHECKPOINT")
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=db.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # os.wait4 gives this child's own resource usage (peak RSS) when /usr/bin/time is not there.
    out_err = {}
    readers = [threading.Thread(target=lambda name, s: out_err.__setitem__(name, s.read()), args=(name, stream))
               for name, stream in (("out", process.stdout), ("err", process.stderr))]
    for reader in readers:
        reader.start()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    for reader in readers:
        reader.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    stdout, stderr = out_err["out"].decode(), out_err["err"].decode()
    if process.returncode != 0:
        raise RuntimeError(f"ingest_flags exited {process.returncode}:\n{stdout}\n{stderr}")
    counts = {name: int(value) for name, value in _COUNT.findall(stdout)}
    if any(counts.get(name) != value for name, value in expect.items()):
        raise RuntimeError(f"ingest_flags printed {counts}, expected {expect}:\n{stdout}")
    peak_kb = 0
    if memory:
        match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
        peak_kb = int(match.group(1)) if match else usage.ru_maxrss  # Linux: kB
    return elapsed, float(_OWN_TIME.search(stdout).group(1)), peak_kb


