"""The processes `make run` starts, supervised from one foreground process.

Celery worker, Celery beat, gunicorn and the demo's local peers (enforcement receiver, SMTP sink) run
as child processes, each in its own process group. A child that dies after the stack came up is
restarted with an exponential back-off (1 s, 2 s, 4 s … capped at 30 s; back to 1 s once it has stayed
up a minute), with one log line naming it, how it ended and when it comes back; whatever it left
behind in its process group (a SIGKILLed Celery worker's pool processes, say) is killed first. Ctrl-C
(SIGINT) or SIGTERM to `runstack` stops them all; the embedded PostgreSQL stops when the last live
process using it exits (see reviewapp.embedded).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

from reviewapp.celery import queue_name

_LOCAL_HOSTS = {"127.0.0.1", "localhost"}


def restart_delay(failures: int, *, base: float = 1.0, cap: float = 30.0) -> float:
    """Seconds to wait before the ``failures``-th restart in a row: base, 2×base, 4×base, … at most cap."""
    return min(cap, base * 2 ** max(0, failures - 1))


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:  # runs in the child between fork and exec
    """If runstack itself is killed (SIGKILL leaves it no time to stop anyone), its children get SIGTERM."""
    _libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Stack:
    port: int
    # gunicorn: one process per core, each with threads (gthread). A 1,000-flag post spends about half its time
    # waiting on PostgreSQL (COPY, INSERT, commit) with the GIL released, and a reviewer's page mostly round
    # trips; threads fill those waits, and a reviewer is served by a free thread instead of queueing behind bulk
    # posts in a sync worker (measured on 2 cores, 4 posting clients: 8.4k flags/s and a page in 33 ms at the
    # median, against 7.4k/s and 321 ms with 2 sync workers and 6.9k/s and 152 ms with 4). Python runs on at
    # most one core per process, so bulk posts cannot take the cores the Celery worker and PostgreSQL need.
    web_workers: int = field(default_factory=lambda: max(2, os.cpu_count() or 1))
    web_threads: int = 4
    worker_concurrency: int = 2
    # Back-off of restarts; a child that stayed up `stable_after` seconds starts again from `restart_base`.
    restart_base: float = 1.0
    restart_cap: float = 30.0
    stable_after: float = 60.0
    # Ports of the local peers chosen by choose_peer_ports(); settings when empty.
    peer_ports: dict[str, int] = field(default_factory=dict)
    log: Callable[[str], None] | None = None
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    started_at: dict[str, float] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    restart_at: dict[str, float] = field(default_factory=dict)
    restarts: int = 0
    _commands: dict[str, list[str]] = field(default_factory=dict)
    _env: dict[str, str] = field(default_factory=dict)

    # ── what runs ─────────────────────────────────────────────────────────────────────────────────
    def commands(self) -> dict[str, list[str]]:
        python = sys.executable
        queues = ",".join(queue_name(kind) for kind in settings.CELERY_QUEUES)
        return {
            **self._local_peers(python),
            "worker": [python, "-m", "celery", "-A", "reviewapp", "worker", "-Q", queues,
                       "--concurrency", str(self.worker_concurrency), "--loglevel", "INFO", "-n", "demo@%h"],
            "beat": [python, "-m", "celery", "-A", "reviewapp", "beat", "--loglevel", "INFO",
                     "--schedule", settings.CELERY_BEAT_SCHEDULE_FILENAME],
            "web": [python, "-m", "gunicorn", "reviewapp.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
                    "--workers", str(self.web_workers), "--worker-class", "gthread", "--threads", str(self.web_threads),
                    "--access-logfile", "-", "--graceful-timeout", "5"],
        }

    def receiver_url(self) -> str:
        if "receiver" in self.peer_ports:
            return f"http://127.0.0.1:{self.peer_ports['receiver']}/enforcement"
        return settings.ENFORCEMENT_WEBHOOK_URL

    def forum_api_root(self) -> str:
        """The local Forum hub's TAXII API root (reviewapp.forum.hub), on the port chosen for it."""
        if "forum_hub" in self.peer_ports:
            parts = urlsplit(settings.FORUM_TAXII_API_ROOT)
            return urlunsplit(parts._replace(netloc=f"127.0.0.1:{self.peer_ports['forum_hub']}"))
        return settings.FORUM_TAXII_API_ROOT

    def _runs_local_forum_hub(self) -> bool:
        hub = urlsplit(getattr(settings, "FORUM_TAXII_API_ROOT", ""))
        return hub.hostname in _LOCAL_HOSTS and bool(hub.port)

    def smtp_address(self) -> tuple[str, int]:
        return settings.EMAIL_HOST, self.peer_ports.get("smtp", settings.EMAIL_PORT)

    def _runs_local_smtp(self) -> bool:
        return settings.EMAIL_BACKEND.endswith("smtp.EmailBackend") and settings.EMAIL_HOST in _LOCAL_HOSTS

    def _local_peers(self, python: str) -> dict[str, list[str]]:
        """The demo's stand-ins for the platform and a mail server, when the settings point at this machine."""
        peers = {}
        webhook = urlsplit(self.receiver_url())
        if webhook.hostname in _LOCAL_HOSTS and webhook.port:
            peers["receiver"] = [python, str(settings.BASE_DIR / "manage.py"), "run_enforcement_receiver",
                                 "--port", str(webhook.port)]
        if self._runs_local_smtp():
            host, port = self.smtp_address()
            # aiosmtpd's default handler prints every email it receives.
            peers["smtp"] = [python, "-m", "aiosmtpd", "--nosetuid", "--listen", f"{host}:{port}"]
        if self._runs_local_forum_hub():
            # A TAXII 2.1 server (medallion) standing in for the Forum hub, one collection per trust group.
            # Seeded with a fictional second lab's bundle (reviewapp/forum/demo.py) so inbound matching shows
            # something in the demo.
            from reviewapp.forum.demo import write_seed

            seed = write_seed(settings.DATA_DIR / "forum-hub-seed.json")
            peers["forum_hub"] = [python, str(settings.BASE_DIR / "manage.py"), "run_forum_hub", "--seed", str(seed),
                                  "--port", str(urlsplit(self.forum_api_root()).port)]
        return peers

    def choose_peer_ports(self, environ: dict[str, str] | None = None) -> dict[str, int]:
        """Free ports for the local receiver and SMTP sink unless ENFORCEMENT_WEBHOOK_URL / EMAIL_PORT say
        otherwise, so that two checkouts run side by side. Every child gets them through environment()."""
        environ = os.environ if environ is None else environ
        if not environ.get("ENFORCEMENT_WEBHOOK_URL"):
            webhook = urlsplit(settings.ENFORCEMENT_WEBHOOK_URL)
            if webhook.hostname in _LOCAL_HOSTS and webhook.port:
                self.peer_ports["receiver"] = free_port()
        if not environ.get("EMAIL_PORT") and self._runs_local_smtp():
            self.peer_ports["smtp"] = free_port()
        if not environ.get("FORUM_TAXII_API_ROOT") and self._runs_local_forum_hub():
            self.peer_ports["forum_hub"] = free_port()
        return self.peer_ports

    def peer_lines(self) -> list[str]:
        lines = []
        commands = self._local_peers(sys.executable)
        if "receiver" in commands:
            lines.append(f"Enforcement receiver: {self.receiver_url()}")
        if "smtp" in commands:
            host, port = self.smtp_address()
            lines.append(f"SMTP sink (prints every email): {host}:{port}")
        if "forum_hub" in commands:
            groups = ", ".join(conf["name"] for conf in settings.FORUM_COLLECTIONS.values())
            lines.append(f"Forum hub (TAXII 2.1, medallion): {self.forum_api_root()} — trust groups: {groups}")
        return lines

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings.dev")
        # Links in notices point at this server unless a public address was configured.
        env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{self.port}")
        if "receiver" in self.peer_ports:
            env["ENFORCEMENT_WEBHOOK_URL"] = self.receiver_url()
        if "smtp" in self.peer_ports:
            env["EMAIL_PORT"] = str(self.peer_ports["smtp"])
        if "forum_hub" in self.peer_ports:
            env["FORUM_TAXII_API_ROOT"] = self.forum_api_root()
        return env

    # ── running it ────────────────────────────────────────────────────────────────────────────────
    def start(self) -> None:
        self._env = self.environment()
        self._commands = self.commands()
        for name in self._commands:
            self._spawn(name)

    def _spawn(self, name: str) -> None:
        self.processes[name] = subprocess.Popen(  # noqa: S603 — our own argv
            self._commands[name], env=self._env, cwd=settings.BASE_DIR,
            # Its own process group: a terminal's Ctrl-C reaches runstack only (which stops each child once),
            # and what a dead child leaves behind can be killed with its group.
            process_group=0, preexec_fn=_die_with_parent if _libc is not None else None,
        )
        self.started_at[name] = time.monotonic()

    def _say(self, message: str) -> None:
        line = f"{datetime.now().strftime('%H:%M:%S')} runstack: {message}"
        if self.log is not None:
            self.log(line)
        else:
            print(line, file=sys.stderr, flush=True)

    def wait_until_healthy(self, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.port}/healthz"
        while time.monotonic() < deadline:
            if self.first_dead():
                return False
            try:
                with urllib.request.urlopen(url, timeout=3) as response:
                    if response.status == 200:
                        return True
            except OSError:
                pass
            time.sleep(0.5)
        return False

    def first_dead(self) -> str | None:
        for name, process in self.processes.items():
            if name not in self.restart_at and process.poll() is not None:
                return name
        return None

    def supervise(self, now: float | None = None) -> None:
        """One round of supervision: schedule a restart for each child that died, start those whose time came."""
        now = time.monotonic() if now is None else now
        for name, process in self.processes.items():
            if name in self.restart_at or process.poll() is None:
                continue
            self._kill_group(process, signal.SIGKILL)  # what it left behind (pool processes, gunicorn workers)
            uptime = now - self.started_at.get(name, now)
            if uptime >= self.stable_after:
                self.failures[name] = 0
            self.failures[name] = self.failures.get(name, 0) + 1
            delay = restart_delay(self.failures[name], base=self.restart_base, cap=self.restart_cap)
            self.restart_at[name] = now + delay
            at = (datetime.now() + timedelta(seconds=delay)).strftime("%H:%M:%S")
            self._say(f"{name} (pid {process.pid}) stopped: {describe_exit(process.returncode)} after {uptime:.0f} s "
                      f"up; restarting it in {delay:g} s, at {at} (restart {self.failures[name]} in a row)")
        for name, when in list(self.restart_at.items()):
            if when <= now:
                del self.restart_at[name]
                self._spawn(name)
                self.restarts += 1
                self._say(f"{name} restarted (pid {self.processes[name].pid})")

    @staticmethod
    def _kill_group(process: subprocess.Popen, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signum)

    def stop(self, grace: float = 15.0, *, interrupted: bool = False) -> None:
        """Stop every child: one SIGINT (after Ctrl-C) or SIGTERM each — a second signal would cut short its
        clean-up — then, past the grace period, SIGKILL; finally whatever is left in each child's group."""
        self.restart_at.clear()
        signum = signal.SIGINT if interrupted else signal.SIGTERM
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signum)
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            remaining = max(0.1, deadline - time.monotonic())
            try:
                process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for process in self.processes.values():
            self._kill_group(process, signal.SIGKILL)
