"""The real stack for the benchmark: the processes `make run` starts, on the benchmark's database.

The command lines come from ``reviewapp.core.stack.Stack.commands()`` (Celery worker and beat, gunicorn,
and the demo's enforcement receiver and SMTP sink), the environment from ``Stack.environment()``, so
the benchmark measures what `make run` runs — with the benchmark's database, its own queue prefix and
data folder, and the broker the settings give (``CELERY_BROKER_URL``, else kombu's SQLAlchemy transport
in the benchmark's database). Only two things differ from `make run`: the worker's node name (so it
never collides with a running demo) and, for the "without grouping" measure, the worker's queue list
(every queue but ``ingest``).

Each process writes to its own log file in the benchmark's work folder (kept with ``--keep``).
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench.ingest import free_port, log

_READY = re.compile(r"\S+@\S+ ready\.")


class RealStack:
    """Start, watch and stop the processes of `make run`. Django must be set up with the benchmark's settings."""

    def __init__(self, port: int, logdir: Path, *, node: str, web_workers: int | None = None, webs: int = 1,
                 workers: int = 1, worker_queues: list[list[str]] | None = None):
        """``webs`` gunicorn instances (``web``, ``web2`` …: separate processes on separate ports, as on separate
        machines behind a load balancer) and ``workers`` Celery worker nodes (``worker``, ``worker2`` …, node
        names ``<node>@%h``, ``<node>-2@%h`` …); ``worker_queues`` gives each node its queue kinds (default: all)."""
        from reviewapp.core.stack import Stack

        self.stack = Stack(port=port) if web_workers is None else Stack(port=port, web_workers=web_workers)
        self.port = port
        self.ports = [port] + [free_port() for _ in range(webs - 1)]
        self.logdir = logdir
        self.node = node
        self.workers = workers
        self.worker_queues = worker_queues
        self.commands = self.stack.commands()
        web = self.commands["web"]
        for number, extra in enumerate(self.ports[1:], start=2):
            command = list(web)
            command[command.index("--bind") + 1] = f"127.0.0.1:{extra}"
            self.commands[f"web{number}"] = command
        self.env = self.stack.environment()
        self.processes: dict[str, subprocess.Popen] = {}
        self._logs: dict[str, object] = {}
        self._worker_log_offset: dict[str, int] = {}

    @property
    def web_names(self) -> list[str]:
        return ["web"] + [f"web{number}" for number in range(2, len(self.ports) + 1)]

    @property
    def worker_names(self) -> list[str]:
        return ["worker"] + [f"worker{number}" for number in range(2, self.workers + 1)]

    # --- processes ---------------------------------------------------------------------------------

    def worker_command(self, *, ingest: bool, name: str = "worker") -> list[str]:
        from django.conf import settings

        from reviewapp.celery import queue_name

        command = list(self.commands["worker"])
        index = self.worker_names.index(name) if name in self.worker_names else 0
        if "-n" in command:
            command[command.index("-n") + 1] = f"{self.node}@%h" if index == 0 else f"{self.node}-{index + 1}@%h"
        kinds = list(settings.CELERY_QUEUES)
        if self.worker_queues:
            kinds = self.worker_queues[index % len(self.worker_queues)]
        if not ingest:
            kinds = [kind for kind in kinds if kind != "ingest"]
        if "-Q" in command:
            command[command.index("-Q") + 1] = ",".join(queue_name(kind) for kind in kinds)
        return command

    def _start(self, name: str, command: list[str]) -> subprocess.Popen:
        log_path = self.logdir / f"{name}.log"
        self._logs[name] = open(log_path, "a")  # noqa: SIM115 — closed in stop()
        process = subprocess.Popen(command, env=self.env, cwd=self.stack_dir(), stdout=self._logs[name],
                                   stderr=subprocess.STDOUT, start_new_session=True)
        self.processes[name] = process
        return process

    @staticmethod
    def stack_dir() -> Path:
        from django.conf import settings

        return Path(settings.BASE_DIR)

    def start(self, *, ingest: bool = True, timeout: float = 120) -> None:
        """Every process of `make run` (each web and worker node); the workers consume ``ingest`` only when
        ``ingest``."""
        for name, command in self.commands.items():
            if name == "worker":
                for worker in self.worker_names:
                    self.start_worker(ingest=ingest, wait=False, name=worker)
            else:
                self._start(name, command)
        self.wait_web(timeout)
        for worker in self.worker_names:
            self.wait_worker(timeout, name=worker)

    def start_worker(self, *, ingest: bool, wait: bool = True, timeout: float = 120, name: str = "worker") -> None:
        self._worker_log_offset[name] = self._log_size(name)
        self._start(name, self.worker_command(ingest=ingest, name=name))
        if wait:
            self.wait_worker(timeout, name=name)

    def _log_size(self, name: str) -> int:
        path = self.logdir / f"{name}.log"
        return path.stat().st_size if path.exists() else 0

    def stop_worker(self, grace: float = 30, name: str = "worker") -> None:
        self._stop(name, grace)

    def wait_worker(self, timeout: float, name: str = "worker") -> None:
        deadline = time.monotonic() + timeout
        path = self.logdir / f"{name}.log"
        while time.monotonic() < deadline:
            self.check_alive()
            with open(path, "rb") as stream:
                stream.seek(self._worker_log_offset.get(name, 0))
                if _READY.search(stream.read().decode(errors="replace")):
                    return
            time.sleep(0.2)
        raise RuntimeError(f"the Celery worker did not become ready; see {path}")

    def wait_web(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for port in self.ports:
            while True:
                self.check_alive()
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5):
                        break
                except urllib.error.HTTPError:
                    break  # it answers (503 names a part that is not ready yet; the worker is waited for separately)
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"gunicorn on {port} did not answer /healthz; see {self.logdir}") from None
                    time.sleep(0.3)

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; see {self.logdir / (name + '.log')}")

    def _stop(self, name: str, grace: float) -> None:
        process = self.processes.pop(name, None)
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        # Pool processes or gunicorn workers left behind by a killed parent: their session is ours.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        stream = self._logs.pop(name, None)
        if stream:
            stream.close()

    def stop(self, grace: float = 20) -> None:
        for name in list(self.processes):
            self._stop(name, grace)

    def worker_pid(self) -> int:
        return self.processes["worker"].pid


# --- The broker: purge the benchmark's own queues ---------------------------------------------------

def purge_queues() -> None:
    """Empty the benchmark's queues (tasks the isolated measures queued with no worker to take them)."""
    from django.conf import settings

    from reviewapp.celery import app, queue_name

    with app.connection_for_write() as connection:
        channel = connection.default_channel
        for kind in settings.CELERY_QUEUES:
            with contextlib.suppress(Exception):
                channel.queue_purge(queue_name(kind))
    # Grouping enqueues a task only when its dedupe key is absent: a purged task must not leave the key
    # behind, or the next flags wait for the reconciler (30 s) instead of a task.
    with contextlib.suppress(Exception):
        from django.core.cache import cache

        from flags.tasks import QUEUED_KEY

        cache.delete(QUEUED_KEY)


def forget_queues() -> None:
    """At the end: on Redis, also the exchange bindings kombu keeps per queue (the lists are gone once empty); on
    RabbitMQ, the run's queues themselves."""
    from django.conf import settings

    from reviewapp.celery import app

    if settings.CELERY_BROKER_URL.startswith("amqp"):
        from reviewapp.celery import queue_name

        with app.connection_for_write() as connection:  # RabbitMQ keeps durable queues: delete the run's own
            for kind in settings.CELERY_QUEUES:
                with contextlib.suppress(Exception):
                    connection.default_channel.queue_delete(queue_name(kind))
        return
    if not settings.CELERY_BROKER_URL.startswith("redis"):
        return  # the SQLAlchemy transport's tables go with the benchmark's database
    with app.connection_for_write() as connection:
        client = connection.default_channel.client
        prefix = settings.CELERY_QUEUE_PREFIX
        keys = [key for pattern in (f"_kombu.binding.{prefix}*", f"_kombu.binding_permanent.{prefix}*")
                for key in client.scan_iter(match=pattern)]
        if keys:
            client.delete(*keys)


def print_subprocess_report(title: str, module: str, *args: str) -> int:
    """For `make bench` (bench/main.py): run ``python -m <module> <args>`` in a process of its own (its own
    database, Django settings and RSS) and print its report; its exit status."""
    log(f"{title} (python -m {module})")
    done = subprocess.run([sys.executable, "-m", module, *args], stdout=subprocess.PIPE, text=True, check=False)
    print()
    print(done.stdout.rstrip() or f"{title}: the benchmark failed (exit {done.returncode})")
    return done.returncode


def run_cleanup(db, workdir: Path, *, keep: bool, what: str) -> None:
    """The end of a benchmark run, whatever happened in it: its queues purged and forgotten (a Redis broker
    outlives the database), its database dropped, its folder removed unless ``keep``."""
    from django.apps import apps

    if apps.ready:
        from django.db import connections

        connections.close_all()
        try:
            purge_queues()
            forget_queues()
        except Exception as exc:  # clean-up must not hide the run's own error
            log(f"could not purge {what}'s queues: {exc}")
    db.drop()
    if keep:
        log(f"kept {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


# --- Waiting for grouping ---------------------------------------------------------------------------

def pending(db) -> int:
    """Flags without a case (the partial index of pending flags keeps this cheap)."""
    with db.server.connect(db.name, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM flags_flag WHERE case_id IS NULL").fetchone()[0]


class PendingWatch:
    """Polls the pending count on one connection; ``wait_empty`` returns when no flag lacks a case."""

    def __init__(self, db, interval: float = 0.2):
        self.conn = db.server.connect(db.name, autocommit=True)
        self.interval = interval

    def count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM flags_flag WHERE case_id IS NULL").fetchone()[0]

    def any_pending(self) -> bool:
        """Cheap (one entry of the partial index), unlike the count, which a profile showed costing 0.3 sessions."""
        return self.conn.execute("SELECT EXISTS (SELECT 1 FROM flags_flag WHERE case_id IS NULL)").fetchone()[0]

    def wait_empty(self, *, timeout: float, stack: RealStack | None = None) -> tuple[float, int]:
        """Wait until nothing is pending; returns (monotonic time it was seen empty, pending left on timeout)."""
        deadline = time.monotonic() + timeout
        last_log = time.monotonic()
        while True:
            pending = self.any_pending()
            now = time.monotonic()
            if not pending:
                return now, 0
            if now >= deadline:
                return now, self.count()
            if stack:
                stack.check_alive()
            if now - last_log > 15:
                log(f"  … {self.count():,} flags still without a case")
                last_log = now
            time.sleep(self.interval)

    def wait_sequenced(self, *, timeout: float) -> float:
        """Wait until the audit sequencer has given every committed event its place in the chain (the grouping
        task sequences its batches' events at its end, beat every second); returns the seconds waited."""
        started = time.monotonic()
        while time.monotonic() - started < timeout and self.conn.execute(
                "SELECT EXISTS (SELECT 1 FROM audit_auditevent WHERE seq IS NULL)").fetchone()[0]:
            time.sleep(self.interval)
        return time.monotonic() - started

    def close(self) -> None:
        self.conn.close()


# --- Profiling: py-spy on the worker, and what the database sessions wait on --------------------------

class WorkerProfile:
    """``py-spy record`` attached to a process and its children (the worker and its pool, gunicorn and its
    workers), plus a sampler of what the benchmark database's sessions are waiting on (pg_stat_activity).

    ``task`` names the frame whose samples are summarised (the grouping task, or Django's WSGI handler).
    """

    def __init__(self, db, pid: int, outdir: Path, *, rate: int = 100, name: str = "worker",
                 task: str = "group_pending_flags", what: str = "the worker's grouping time"):
        self.db, self.pid, self.outdir, self.rate = db, pid, outdir, rate
        self.name, self.task, self.what = name, task, what
        self.raw = outdir / f"{name}-profile.txt"
        self.waits: collections.Counter = collections.Counter()
        self.samples = 0
        self._stop = threading.Event()
        self._spy: subprocess.Popen | None = None
        self._sampler: threading.Thread | None = None

    @staticmethod
    def available() -> str | None:
        return shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")

    def start(self) -> None:
        spy = self.available()
        if spy:
            self._spy = subprocess.Popen(
                [spy, "record", "--pid", str(self.pid), "--subprocesses", "--idle", "--nonblocking",
                 "--rate", str(self.rate), "--format", "raw", "--output", str(self.raw)],
                stdout=subprocess.DEVNULL, stderr=open(self.outdir / f"py-spy-{self.name}.log", "w"))  # noqa: SIM115
        else:
            log("py-spy not installed (pip install -e '.[dev]'): only the database sampler runs")
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        query = """
            SELECT coalesce(wait_event_type, 'CPU'), coalesce(wait_event, ''), left(regexp_replace(query, '\\s+', ' ',
                   'g'), 70)
            FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active'
        """
        with self.db.server.connect(self.db.name, autocommit=True) as conn:
            while not self._stop.wait(0.05):
                self.samples += 1
                for kind, event, text in conn.execute(query).fetchall():
                    self.waits[(f"{kind}:{event}" if event else kind, text.strip())] += 1

    def stop(self) -> None:
        self._stop.set()
        if self._sampler:
            self._sampler.join(10)
        if self._spy:
            self._spy.send_signal(signal.SIGINT)
            try:
                self._spy.wait(60)
            except subprocess.TimeoutExpired:
                self._spy.kill()
                self._spy.wait()

    def summary(self, window: str, top: int = 25) -> str:
        lines = [f"Where {self.what} went ({window}; py-spy --idle --subprocesses at {self.rate} Hz; "
                 "database sampled every 50 ms)", ""]
        lines += summarise_pyspy(self.raw, top=top, task=self.task) if self.raw.exists() else ["(no py-spy profile)"]
        lines += ["", f"Database sessions of the benchmark's database, {self.samples} samples: "
                      "average active sessions per (wait, query)"]
        for (wait, text), count in self.waits.most_common(top):
            lines.append(f"  {count / max(self.samples, 1):6.2f}  {wait:<28} {text}")
        return "\n".join(lines) + "\n"


_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")
_OURS = ("/reviewapp/", "/flags/", "/appeals/")


def _frame(text: str) -> tuple[str, str, str]:
    match = _FRAME.match(text.strip())
    if not match:
        return text.strip(), "", ""
    path = match["file"]
    for marker in ("site-packages/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        path = path.split("/work/main/", 1)[-1] if "/work/main/" in path else path
    return match["func"], path, match["line"] or ""


def summarise_pyspy(path: Path, *, top: int = 25, task: str = "group_pending_flags") -> list[str]:
    """Read py-spy's raw (collapsed) output: of the samples inside the grouping task, where they were."""
    inclusive: collections.Counter = collections.Counter()
    leaf: collections.Counter = collections.Counter()
    ours: collections.Counter = collections.Counter()
    total = grouping = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")[1:]  # the first entry names the process
        if not any(frame.startswith(f"{task} ") for frame in frames):
            continue
        grouping += n
        below = next(i for i, frame in enumerate(frames) if frame.startswith(f"{task} "))
        parsed = [_frame(frame) for frame in frames[below:]]
        for func, file, _ in set(parsed):
            inclusive[f"{func} ({file})"] += n
        func, file, line_no = parsed[-1]
        leaf[f"{func} ({file}:{line_no})"] += n
        for func, file, line_no in reversed(parsed):
            if any(marker in f"/{file}" for marker in _OURS) or file.startswith(("reviewapp/", "flags/", "appeals/")):
                ours[f"{func} ({file}:{line_no})"] += n
                break
    if not grouping:
        return [f"(no sample inside {task}: {total} samples in all)"]
    share = lambda n: f"{n / grouping:6.1%}"  # noqa: E731
    out = [f"{grouping} samples inside {task} ({grouping / max(total, 1):.0%} of the worker's {total}, idle included)",
           "", "By the deepest line of our code (which step was running):"]
    out += [f"  {share(n)}  {name}" for name, n in ours.most_common(top)]
    out += ["", "By leaf frame (where the time was finally spent; psycopg wait = waiting on PostgreSQL):"]
    out += [f"  {share(n)}  {name}" for name, n in leaf.most_common(top)]
    out += ["", "Inclusive, below the task (the function or something it called was on the stack):"]
    out += [f"  {share(n)}  {name}" for name, n in inclusive.most_common(top)]
    return out


# --- CPU: who used the two cores during a measure ----------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_ticks(pid: int) -> tuple[int, int] | None:
    """(ppid, utime + stime in clock ticks) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), int(fields[11]) + int(fields[12])


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of the whole machine since boot (every process, other users' included)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return total - idle, total


class CpuMeter:
    """CPU seconds per part of the stack over a window: the stack's processes and their children, this
    benchmark (its client threads) and what it starts (``ingest_flags``), and the PostgreSQL backends of
    the benchmark's database; and how busy the whole machine was. Sampled every ``interval`` seconds, so a
    process that ends between samples is counted up to its last sample. Linux only (``/proc``)."""

    def __init__(self, db, roots: dict[str, int], interval: float = 0.5):
        self.db, self.roots, self.interval = db, roots, interval
        self.first: dict[int, tuple[str, int]] = {}
        self.last: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def available() -> bool:
        return Path("/proc/stat").exists()

    def _sample(self, conn, *, initial: bool = False) -> None:
        parents: dict[int, int] = {}
        ticks: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                got = _cpu_ticks(int(entry.name))
                if got:
                    parents[int(entry.name)], ticks[int(entry.name)] = got
        backends = {pid for (pid,) in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()").fetchall()}
        me = os.getpid()
        by_root = {pid: role for role, pid in self.roots.items()}
        for pid, value in ticks.items():
            role, seen, node = None, 0, pid
            while node and seen < 64:  # walk up to a stack process, this benchmark, or init
                if node in by_root:
                    role = by_root[node]
                    break
                if node == me:
                    role = "this benchmark (clients)" if pid == me else "commands it ran (ingest_flags, py-spy)"
                    break
                node, seen = parents.get(node, 0), seen + 1
            if role is None and pid in backends:
                role = "PostgreSQL (this database's backends)"
            if role is None:
                continue
            if pid not in self.first:
                self.first[pid] = (role, value if initial else 0)
            self.last[pid] = value

    def _run(self) -> None:
        with self.db.server.connect(self.db.name, autocommit=True) as conn:
            self._sample(conn, initial=True)
            while not self._stop.wait(self.interval):
                self._sample(conn)
            self._sample(conn)

    def __enter__(self) -> CpuMeter:
        self.started, self.machine_started = time.monotonic(), _machine_ticks()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(30)
        self.seconds = time.monotonic() - self.started
        busy, total = (end - start for end, start in zip(_machine_ticks(), self.machine_started, strict=True))
        self.machine_busy = busy / total * (os.cpu_count() or 1) if total else 0.0

    def cores(self) -> dict[str, float]:
        """Average cores each part used over the window."""
        used: collections.Counter = collections.Counter()
        for pid, (role, start) in self.first.items():
            used[role] += (self.last.get(pid, start) - start) / _TICK
        return {role: seconds / self.seconds for role, seconds in used.most_common()}

    def line(self) -> str:
        parts = ", ".join(f"{role} {cores:.2f}" for role, cores in self.cores().items() if cores >= 0.005)
        return (f"cores used over {self.seconds:.0f} s: {parts}; the whole machine {self.machine_busy:.2f} of "
                f"{os.cpu_count()} busy")
