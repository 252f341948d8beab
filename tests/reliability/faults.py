"""What the fault tests share (their fixtures are in conftest.py): finding which worker node took a task or holds a
connection to a peer, and saying what was killed and when.

Each fault test prints one line per fault (``FAULT …``: what, when, the counts it compared), so a run's output
(``pytest -s``) is the record of what was done to the system and what it came back with.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from tests.support import ROOT, CeleryWorker


def node_name(node: CeleryWorker) -> str:
    return node.name or "the session's node"


def node_connected_to(nodes: list[CeleryWorker], port: int, *, local_port: int | None = None) -> CeleryWorker | None:
    """The node (of these) with an established TCP connection to 127.0.0.1:``port`` (from ``local_port`` if given)."""
    for node in nodes:
        if node.process is None or node.process.poll() is not None:
            continue
        try:
            processes = [psutil.Process(node.process.pid), *psutil.Process(node.process.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for process in processes:
            try:
                connections = process.net_connections(kind="tcp")
            except psutil.NoSuchProcess:
                continue
            for conn in connections:
                if (conn.status == psutil.CONN_ESTABLISHED and conn.raddr and conn.raddr.port == port
                        and (local_port is None or conn.laddr.port == local_port)):
                    return node
    return None


def node_that_received(nodes: list[CeleryWorker], task_id: str) -> CeleryWorker | None:
    """The node whose log says it received the task with this id."""
    for node in nodes:
        if node.log_path.exists() and f"[{task_id}] received" in node.log_path.read_text(errors="replace"):
            return node
    return None


class FaultLog:
    """Seconds since the test began, and one printed line per thing done to the system."""

    def __init__(self, name: str):
        self.name, self.started = name, time.monotonic()
        self.lines: list[str] = []

    def at(self) -> float:
        return time.monotonic() - self.started

    def note(self, text: str) -> str:
        line = f"FAULT {self.name} t={self.at():6.1f}s: {text}"
        self.lines.append(line)
        print(line, flush=True)
        return line


class Beat:
    """A real ``celery beat`` (the reconcilers, the audit sequencer, the heartbeat), as ``make run`` starts it."""

    def __init__(self, env: dict[str, str], schedule: Path, log_path: Path):
        self.log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 — closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "reviewapp", "beat", "--loglevel", "INFO", "--schedule",
             str(schedule)], cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self.log.close()
