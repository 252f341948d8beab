"""The embedded PostgreSQL stops with the last *live* process using it, even after others were SIGKILLed.

Real processes and a real pgserver, in a data directory of the test's own (never a checkout's .data/).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from reviewapp.embedded import prune_dead_handles, running_server_pid

from ..support import ROOT, wait_for

JOIN = """
import sys
from pathlib import Path
from reviewapp.embedded import ensure_running
ensure_running(Path(sys.argv[1]))
print("joined", flush=True)
sys.stdin.read()  # exits normally (atexit handlers run) when the test closes stdin
"""


@pytest.fixture
def data_dir(tmp_path):
    path = tmp_path / "data"
    yield path
    pid = running_server_pid(path / "pg")
    if pid:  # the test failed: leave nothing running
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)


def _join(data_dir: Path) -> subprocess.Popen:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    process = subprocess.Popen([sys.executable, "-c", JOIN, str(data_dir)], cwd=ROOT, env=env, text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert process.stdout.readline().strip() == "joined", "could not join the embedded server"
    return process


def test_the_last_live_process_stops_the_server_though_another_was_sigkilled(data_dir):
    first = _join(data_dir)
    second = _join(data_dir)
    pgdata = data_dir / "pg"
    assert running_server_pid(pgdata)
    assert set(json.loads((pgdata / ".handle_pids.json").read_text())) == {first.pid, second.pid}
    second.send_signal(signal.SIGKILL)  # no atexit: its pid stays on pgserver's list
    second.wait(10)
    first.stdin.close()
    assert first.wait(30) == 0
    wait_for(lambda: running_server_pid(pgdata) is None, timeout=20,
             what="the embedded PostgreSQL to stop when its last live user exited")
    assert json.loads((pgdata / ".handle_pids.json").read_text()) == []


def test_dead_pids_are_pruned_from_the_handle_list(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / ".handle_pids.json").write_text(json.dumps([dead.pid, live.pid]))
        assert prune_dead_handles(tmp_path) == [live.pid]
        assert json.loads((tmp_path / ".handle_pids.json").read_text()) == [live.pid]
    finally:
        live.kill()
        live.wait()
