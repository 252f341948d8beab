"""What `make run` hands its processes, and how it supervises them (real processes throughout)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import psycopg
import pytest
from django.db import connection
from psycopg import sql

from reviewapp.core.stack import Stack, describe_exit, free_port, restart_delay

from ..support import ROOT, child_env, wait_for


def test_notices_link_to_the_port_make_run_serves(monkeypatch):
    monkeypatch.delenv("PUBLIC_BASE_URL", raising=False)
    assert Stack(port=8123).environment()["PUBLIC_BASE_URL"] == "http://127.0.0.1:8123"


def test_a_configured_public_address_wins(monkeypatch):
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://appeals.example")
    assert Stack(port=8123).environment()["PUBLIC_BASE_URL"] == "https://appeals.example"


# ── Ports of the local peers ──────────────────────────────────────────────────────────────────────


def test_local_peers_get_free_ports_handed_to_every_child(settings):
    settings.ENFORCEMENT_WEBHOOK_URL = "http://127.0.0.1:8025/enforcement"
    settings.EMAIL_BACKEND, settings.EMAIL_HOST, settings.EMAIL_PORT = (
        "django.core.mail.backends.smtp.EmailBackend", "127.0.0.1", 1025)
    settings.FORUM_TAXII_API_ROOT = "http://127.0.0.1:5555/forum/"
    stack = Stack(port=8123)
    ports = stack.choose_peer_ports(environ={})
    assert set(ports) == {"receiver", "smtp", "forum_hub"} and not {8025, 1025, 5555} & set(ports.values())
    env = stack.environment()
    assert env["ENFORCEMENT_WEBHOOK_URL"] == f"http://127.0.0.1:{ports['receiver']}/enforcement"
    assert env["EMAIL_PORT"] == str(ports["smtp"])
    assert env["FORUM_TAXII_API_ROOT"] == f"http://127.0.0.1:{ports['forum_hub']}/forum/"
    commands = stack.commands()
    assert commands["forum_hub"][-5:-3] == ["run_forum_hub", "--seed"]  # the demo's second lab (forum/demo.py)
    assert commands["forum_hub"][-2:] == ["--port", str(ports["forum_hub"])]
    assert Path(commands["forum_hub"][-3]).name == "forum-hub-seed.json"
    assert commands["receiver"][-2:] == ["--port", str(ports["receiver"])]
    assert commands["smtp"][-1] == f"127.0.0.1:{ports['smtp']}"
    groups = ", ".join(conf["name"] for conf in settings.FORUM_COLLECTIONS.values())
    assert stack.peer_lines() == [f"Enforcement receiver: http://127.0.0.1:{ports['receiver']}/enforcement",
                                  f"SMTP sink (prints every email): 127.0.0.1:{ports['smtp']}",
                                  f"Forum hub (TAXII 2.1, medallion): http://127.0.0.1:{ports['forum_hub']}/forum/"
                                  f" — trust groups: {groups}"]
    # A second stack (another checkout) gets other ports.
    assert set(Stack(port=8124).choose_peer_ports(environ={}).values()).isdisjoint(ports.values())


def test_configured_peer_ports_are_kept(settings):
    settings.ENFORCEMENT_WEBHOOK_URL = "http://127.0.0.1:9025/enforcement"
    settings.EMAIL_BACKEND, settings.EMAIL_HOST, settings.EMAIL_PORT = (
        "django.core.mail.backends.smtp.EmailBackend", "127.0.0.1", 9026)
    settings.FORUM_TAXII_API_ROOT = "http://127.0.0.1:9027/forum/"
    stack = Stack(port=8123)
    assert stack.choose_peer_ports(environ={"ENFORCEMENT_WEBHOOK_URL": settings.ENFORCEMENT_WEBHOOK_URL,
                                            "EMAIL_PORT": "9026", "FORUM_TAXII_API_ROOT": "x"}) == {}
    commands = stack.commands()
    assert commands["receiver"][-2:] == ["--port", "9025"] and commands["smtp"][-1] == "127.0.0.1:9026"
    assert commands["forum_hub"][-2:] == ["--port", "9027"]


# ── The web server make run starts ─────────────────────────────────────────────────────────────────


@pytest.mark.django_db(transaction=True)
@pytest.mark.xdist_group("gunicorn")
def test_make_runs_web_server_answers_while_more_clients_than_processes_are_mid_upload(detector_token, artifacts_dir):
    """Reviewers are not queued behind bulk posts: while more detectors than gunicorn processes upload a body
    slowly, a page is still answered, and the uploads then complete (two sync workers answered nothing until
    their timeout killed them)."""
    stack = Stack(port=free_port())
    command = stack.commands()["web"]
    assert command[command.index("--worker-class") + 1] == "gthread"
    log = open(artifacts_dir / f"gunicorn-stack-{os.getpid()}.log", "w")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(command, cwd=ROOT, env=child_env(), stdout=log, stderr=subprocess.STDOUT)
    start = b'{"flags": ['
    rest = b" " * (1000 - len(start) - 2) + b"]}"
    uploads = []
    try:
        wait_for(lambda: _answers(stack.port), timeout=60, what="gunicorn")
        # More uploads than processes (two sync workers answered nothing), but fewer than one process's threads:
        # the kernel may hand every connection to the same process, and a page must still find a thread there.
        for _ in range(min(stack.web_workers + 1, stack.web_threads - 1)):
            upload = socket.create_connection(("127.0.0.1", stack.port), timeout=20)
            upload.sendall(b"POST /api/v1/flags/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
                           + detector_token.encode() + b"\r\nContent-Type: application/json\r\n"
                           b"Content-Length: 1000\r\n\r\n" + start)  # the rest of the body comes later
            uploads.append(upload)
        with urllib.request.urlopen(f"http://127.0.0.1:{stack.port}/login/", timeout=15) as answer:
            assert answer.status == 200
        for upload in uploads:
            upload.sendall(rest)
            assert upload.recv(64).startswith(b"HTTP/1.1 400 "), "an upload was cut off"  # "flags" is empty
    finally:
        for upload in uploads:
            upload.close()
        process.terminate()
        process.wait(20)
        log.close()


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=5) as answer:
            return answer.status == 200
    except OSError:
        return False


# ── Supervision, with cheap stand-in children ────────────────────────────────────────────────────


def test_restart_delay_doubles_up_to_a_cap():
    assert [restart_delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL" and describe_exit(3) == "exit code 3"


class StandIns(Stack):
    def __init__(self, commands: dict[str, list[str]], **kwargs):
        super().__init__(port=0, **kwargs)
        self._stand_ins = commands
        self.lines: list[str] = []
        self.log = self.lines.append

    def commands(self):
        return self._stand_ins


def _sleeper(pid_file: Path | None = None) -> list[str]:
    """A child that (optionally) starts a grandchild in its process group, writes its pid, and sleeps."""
    code = "import subprocess, sys, time\n"
    if pid_file:
        code += (f"g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
                 f"open({str(pid_file)!r}, 'w').write(str(g.pid))\n")
    code += "time.sleep(600)\n"
    return [sys.executable, "-c", code]


def _supervise_until(stack: Stack, predicate, timeout: float = 20.0, what: str = "supervision"):
    return wait_for(lambda: (stack.supervise(), predicate())[1], timeout=timeout, interval=0.05, what=what)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_killed_child_is_restarted_and_its_leftovers_killed_the_others_untouched(tmp_path):
    grandchild_file = tmp_path / "grandchild.pid"
    stack = StandIns({"worker": _sleeper(grandchild_file), "web": _sleeper()}, restart_base=0.2)
    stack.start()
    try:
        wait_for(lambda: grandchild_file.exists() and grandchild_file.read_text(), what="the grandchild")
        grandchild = int(grandchild_file.read_text())
        worker, web = stack.processes["worker"], stack.processes["web"]
        os.kill(worker.pid, signal.SIGKILL)
        _supervise_until(stack, lambda: stack.processes["worker"] is not worker, what="the worker's restart")
        assert stack.processes["web"] is web and web.poll() is None
        assert stack.processes["worker"].poll() is None
        assert _gone(grandchild), "the killed worker's pool process was left running"
        assert re.search(rf"worker \(pid {worker.pid}\) stopped: killed by SIGKILL after \d+ s up; "
                         r"restarting it in 0.2 s, at \d\d:\d\d:\d\d", stack.lines[0]), stack.lines
        assert "worker restarted (pid" in stack.lines[1]
    finally:
        stack.stop(grace=5)
    assert all(process.poll() is not None for process in stack.processes.values())


def test_a_crashing_child_backs_off_exponentially_and_the_back_off_resets_once_it_stays_up():
    stack = StandIns({"receiver": [sys.executable, "-c", "raise SystemExit(3)"]}, restart_base=0.1,
                     restart_cap=0.4, stable_after=60)
    stack.start()
    try:
        _supervise_until(stack, lambda: len(stack.lines) >= 10, what="five crashes")
        delays = re.findall(r"restarting it in ([\d.]+) s", "\n".join(stack.lines))
        assert delays[:5] == ["0.1", "0.2", "0.4", "0.4", "0.4"]
        assert "receiver (pid" in stack.lines[0] and "exit code 3" in stack.lines[0]
        # Once a run lasted `stable_after`, the next crash starts the back-off from the beginning again.
        stack.supervise()
        stack.restart_at.clear()
        stack.processes["receiver"].wait(5)
        stack.started_at["receiver"] -= 61
        stack.supervise()
        assert stack.restart_at["receiver"] - time.monotonic() <= 0.1
    finally:
        stack.stop(grace=5)


def test_stop_leaves_nothing_running_even_what_children_started(tmp_path):
    grandchild_file = tmp_path / "grandchild.pid"
    stack = StandIns({"worker": _sleeper(grandchild_file), "beat": _sleeper()})
    stack.start()
    wait_for(lambda: grandchild_file.exists() and grandchild_file.read_text(), what="the grandchild")
    stack.stop(grace=5)
    assert all(process.poll() is not None for process in stack.processes.values())
    assert wait_for(lambda: _gone(int(grandchild_file.read_text())), timeout=5, what="the grandchild to go")


# ── The real thing: manage.py runstack with a real worker, beat, web, receiver and SMTP sink ──────


@pytest.fixture
def stack_database():
    """A database of its own for runstack (it migrates and loads the policy: nothing another test sees)."""
    db = connection.settings_dict
    name = f"reviewapp_stack_{os.getpid()}"
    params = {"user": db["USER"], "host": db["HOST"] or None, "port": db["PORT"] or None,
              "password": db.get("PASSWORD") or None}
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = child_env()["DATABASE_URL"].rsplit("/", 1)[0] + f"/{name}"
    yield url
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def _post(url: str) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=b"{}", method="POST"), timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def _child(runstack: psutil.Process, needle: str) -> psutil.Process:
    for child in runstack.children():
        if needle in " ".join(child.cmdline()):
            return child
    raise AssertionError(f"no child of runstack runs {needle!r}")


def test_make_run_restarts_a_killed_worker_and_receiver_while_web_keeps_answering(stack_database, tmp_path):
    port = free_port()
    env = child_env(DATABASE_URL=stack_database, REVIEWAPP_DATA_DIR=str(tmp_path / "data"),
                    CELERY_QUEUE_PREFIX=f"stack{os.getpid()}-", PORT=str(port), PYTHONUNBUFFERED="1",
                    DJANGO_SETTINGS_MODULE="reviewapp.settings.dev")
    for name in ("ENFORCEMENT_WEBHOOK_URL", "EMAIL_PORT", "REVIEWAPP_DEMO"):
        env.pop(name, None)
    log_path = tmp_path / "runstack.log"
    with open(log_path, "w") as log:
        runstack = subprocess.Popen([sys.executable, "manage.py", "runstack"], cwd=ROOT, env=env, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
    seen: set[int] = set()

    def output() -> str:
        return log_path.read_text(errors="replace")

    def note_descendants():
        with_children = psutil.Process(runstack.pid)
        seen.update(p.pid for p in with_children.children(recursive=True))

    try:
        wait_for(lambda: "Press Ctrl-C to stop" in output() or runstack.poll() is not None, timeout=180,
                 what="runstack to come up")
        assert runstack.poll() is None, output()[-4000:]
        banner = output()
        receiver_port = int(re.search(r"Enforcement receiver: http://127.0.0.1:(\d+)/enforcement", banner)[1])
        smtp_port = int(re.search(r"SMTP sink \(prints every email\): 127.0.0.1:(\d+)", banner)[1])
        assert receiver_port != 8025 and smtp_port != 1025  # not the fixed defaults: two checkouts can run at once
        health = f"http://127.0.0.1:{port}/healthz"
        assert _get(health) == 200
        # manage.py in a second terminal (no PORT, no ENFORCEMENT_WEBHOOK_URL) finds the same peers.
        second_terminal = subprocess.run(
            [sys.executable, "-c", "import django; django.setup(); from django.conf import settings; "
             "print(settings.ENFORCEMENT_WEBHOOK_URL, settings.EMAIL_PORT)"],
            cwd=ROOT, env={key: value for key, value in env.items() if key != "PORT"}, capture_output=True,
            text=True, check=True)
        assert second_terminal.stdout.split() == [f"http://127.0.0.1:{receiver_port}/enforcement", str(smtp_port)]
        me = psutil.Process(runstack.pid)
        note_descendants()

        # SIGKILL of the worker's main process (once it consumes): it comes back, and web answers all along.
        wait_for(lambda: " ready." in output(), timeout=90, what="the worker to be ready")
        worker = _child(me, "celery -A reviewapp worker")
        os.kill(worker.pid, signal.SIGKILL)
        answers = []
        wait_for(lambda: (answers.append(_get(health)), f"worker (pid {worker.pid}) stopped: killed by SIGKILL"
                                                        in output() and "worker restarted" in output())[1],
                 timeout=30, interval=0.3, what="the worker's restart")
        assert set(answers) == {200}, answers
        new_worker = _child(me, "celery -A reviewapp worker")
        assert new_worker.pid != worker.pid
        wait_for(lambda: " ready." in output().split("worker restarted", 1)[1], timeout=90,
                 what="the restarted worker to be ready")
        note_descendants()

        # SIGTERM of the enforcement receiver: it comes back on the same port.
        receiver = _child(me, "run_enforcement_receiver")
        os.kill(receiver.pid, signal.SIGTERM)
        wait_for(lambda: f"receiver (pid {receiver.pid}) stopped" in output() and "receiver restarted" in output(),
                 timeout=30, what="the receiver's restart")
        wait_for(lambda: _post(f"http://127.0.0.1:{receiver_port}/enforcement") == 401, timeout=30,
                 what="the restarted receiver to answer (401: unsigned)")
        assert _get(health) == 200
        note_descendants()
    finally:
        if runstack.poll() is None:
            runstack.send_signal(signal.SIGTERM)
        try:
            runstack.wait(40)
        except subprocess.TimeoutExpired:
            os.killpg(runstack.pid, signal.SIGKILL)
            raise
    assert "Stopped." in output()
    assert not (tmp_path / "data" / "run-peers.json").exists()
    left = [pid for pid in seen if not _gone(pid)]
    assert not left, f"left running after runstack stopped: {[psutil.Process(p).cmdline() for p in left]}"
