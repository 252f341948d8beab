"""The processes `make run` starts, watched from one foreground process.

Celery worker, Celery beat and gunicorn run as child processes; if any of them dies the others are
stopped too, and Ctrl-C (SIGINT) or SIGTERM stops them all. The embedded PostgreSQL stops when the
last process using it exits (see reviewapp.embedded).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.conf import settings

from reviewapp.celery import queue_name

_LOCAL_HOSTS = {"127.0.0.1", "localhost"}


@dataclass
class Stack:
    port: int
    web_workers: int = 2
    worker_concurrency: int = 2
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

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
                    "--workers", str(self.web_workers), "--access-logfile", "-", "--graceful-timeout", "5"],
        }

    def _local_peers(self, python: str) -> dict[str, list[str]]:
        """The demo's stand-ins for the platform and a mail server, when the settings point at this machine."""
        peers = {}
        webhook = urlsplit(settings.ENFORCEMENT_WEBHOOK_URL)
        if webhook.hostname in _LOCAL_HOSTS and webhook.port:
            peers["receiver"] = [python, str(settings.BASE_DIR / "manage.py"), "run_enforcement_receiver",
                                 "--port", str(webhook.port)]
        if settings.EMAIL_BACKEND.endswith("smtp.EmailBackend") and settings.EMAIL_HOST in _LOCAL_HOSTS:
            # aiosmtpd's default handler prints every email it receives.
            peers["smtp"] = [python, "-m", "aiosmtpd", "--nosetuid", "--listen",
                             f"{settings.EMAIL_HOST}:{settings.EMAIL_PORT}"]
        return peers

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings.dev")
        # Links in notices point at this server unless a public address was configured.
        env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{self.port}")
        return env

    def start(self) -> None:
        env = self.environment()
        for name, command in self.commands().items():
            self.processes[name] = subprocess.Popen(command, env=env, cwd=settings.BASE_DIR)  # noqa: S603 — our own argv

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
            if process.poll() is not None:
                return name
        return None

    def stop(self, grace: float = 15.0, *, interrupted: bool = False) -> None:
        """Stop every child. After Ctrl-C the children got the SIGINT too: let them finish exiting on their
        own first (a second signal would cut short their clean-up), then SIGTERM what is left, then kill."""
        if interrupted:
            deadline = time.monotonic() + grace / 2
            for process in self.processes.values():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            remaining = max(0.1, deadline - time.monotonic())
            try:
                process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
