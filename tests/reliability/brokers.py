"""Private broker instances for fault tests: a Redis and a RabbitMQ node of the test's own, on free ports, with
every file in a temporary folder — never the machine's Redis (6379) or RabbitMQ node (5672, rabbit@<host>),
which other sessions use.

    with PrivateRedis(tmp_path / "redis") as redis:
        redis.url()          # redis://127.0.0.1:N/0
        redis.restart()      # stop and start on the same port (no persistence: what it held is gone)

    with PrivateRabbitMQ(tmp_path / "rabbit") as rabbit:
        rabbit.url()         # amqp://guest:guest@127.0.0.1:N//
        rabbit.restart()     # same node, same data folder: durable queues and persistent messages survive
        rabbit.restart(kill=True)  # SIGKILL instead of a clean shutdown

Both run in a process group of their own; ``stop()`` (and leaving the ``with``) kills the whole group, so no
redis-server or beam.smp is left behind even when a test fails. The RabbitMQ node reads none of /etc/rabbitmq
(its own config, env file and enabled-plugins file, management plugin off); it registers with the machine's
epmd (4369) under its own name ``rt<port>@localhost``, as any Erlang node on the machine does.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil

RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # the script itself, not Debian's su-to-rabbitmq wrapper


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class _PrivateProcess:
    """A server process in its own session (process group) with its log in ``folder``."""

    name = "server"

    def __init__(self, folder: Path, port: int | None = None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        self.log_path = self.folder / f"{self.name}.log"
        self.started_in: list[float] = []  # seconds from spawn to ready, one per start

    # subclasses: _command(), _env(), _ready()
    def _command(self) -> list[str]:
        raise NotImplementedError

    def _env(self) -> dict[str, str]:
        return dict(os.environ)

    def _ready(self) -> bool:
        return _port_open(self.port)

    def start(self, timeout: float = 60.0) -> _PrivateProcess:
        if _port_open(self.port):
            raise RuntimeError(f"port {self.port} is taken; a private {self.name} needs a free one")
        began = time.monotonic()
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(f"--- start {time.strftime('%H:%M:%S')} ---\n")
            log.flush()
            self.process = subprocess.Popen(self._command(), cwd=self.folder, env=self._env(), stdout=log,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
        deadline = began + timeout
        while not self._ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                code = self.process.poll()
                self.stop()
                raise RuntimeError(f"private {self.name} on port {self.port} did not start "
                                   f"(exit {code}); log: {self.log_path}\n{self.log_tail()}")
            time.sleep(0.1)
        self.started_in.append(time.monotonic() - began)
        return self

    def stop(self, *, kill: bool = False, timeout: float = 30.0) -> None:
        """Stop the server: SIGTERM (a clean shutdown) unless ``kill``, then SIGKILL to whatever is left of
        its process group. Waits until the port is free again."""
        if self.process is None:
            return
        # Every descendant, taken before any dies: beam.smp's helpers (erl_child_setup, inet_gethost) leave
        # the process group, so a kill of the group alone might miss one.
        tree = self._tree()
        if not kill and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        for child in tree:
            with contextlib.suppress(psutil.Error):
                child.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        psutil.wait_procs(tree, timeout=10)
        deadline = time.monotonic() + 10
        while _port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.process = None

    def restart(self, *, kill: bool = False, down_for: float = 0.0, timeout: float = 60.0) -> _PrivateProcess:
        """Stop (cleanly, or SIGKILL with ``kill``), stay down ``down_for`` seconds, start again on the same port."""
        self.stop(kill=kill)
        if down_for:
            time.sleep(down_for)
        return self.start(timeout=timeout)

    def _tree(self) -> list[psutil.Process]:
        try:
            return [psutil.Process(self.process.pid), *psutil.Process(self.process.pid).children(recursive=True)]
        except psutil.Error:
            return []

    def pids(self) -> list[int]:
        """This server's processes now (the launcher and every descendant)."""
        return [process.pid for process in self._tree() if process.is_running()
                and process.status() != psutil.STATUS_ZOMBIE] if self.process else []

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop(kill=True)


class PrivateRedis(_PrivateProcess):
    """``redis-server`` on a free port of 127.0.0.1, no RDB snapshot and no AOF: a restart loses everything it
    held, as a broker without persistence does."""

    name = "redis"

    def _command(self) -> list[str]:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        return [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.folder), "--daemonize", "no", "--protected-mode", "yes"]

    def _ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"


class PrivateRabbitMQ(_PrivateProcess):
    """A RabbitMQ node of its own: node ``rt<port>@localhost``, AMQP on a free port, Erlang distribution on
    another, its Mnesia database, logs, pid file, config and plugins file in ``folder``. ``restart()`` keeps the
    data folder, so durable queues and their persistent messages survive it."""

    name = "rabbitmq"

    def __init__(self, folder: Path, port: int | None = None):
        super().__init__(folder, port)
        self.dist_port = free_port()
        self.node = f"rt{self.port}@localhost"
        self.home = self.folder / "home"  # its own Erlang cookie, so rabbitmqctl here talks only to this node
        self.home.mkdir(exist_ok=True)
        (self.folder / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"
            "loopback_users.guest = true\n"
            "disk_free_limit.absolute = 50MB\n"
            "log.console = false\n"
            "log.file.level = info\n"
        )
        (self.folder / "rabbitmq-env.conf").write_text("# a private node: nothing from /etc/rabbitmq\n")
        (self.folder / "enabled_plugins").write_text("[].\n")

    def _command(self) -> list[str]:
        return [RABBITMQ_SERVER]

    def _env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("RABBITMQ_", "ERL_")) or key == "ERL_EPMD_ADDRESS"}
        env.update({
            "HOME": str(self.home),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONF_ENV_FILE": str(self.folder / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(self.folder / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.folder / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.folder / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.folder / "log"),
            "RABBITMQ_PID_FILE": str(self.folder / "rabbitmq.pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        })
        return env

    def _ready(self) -> bool:
        """Ready once an AMQP client completes the handshake (the listener opens only at the end of boot)."""
        if not _port_open(self.port):
            return False
        from kombu import Connection

        try:
            with Connection(self.url(), connect_timeout=2) as conn:
                conn.ensure_connection(max_retries=1)
                return True
        except Exception:  # not up yet, whatever the client says
            return False

    def ctl(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        """``rabbitmqctl -n <this node> ...`` with this node's cookie."""
        return subprocess.run(["/usr/lib/rabbitmq/bin/rabbitmqctl", "-n", self.node, *args], env=self._env(),
                              capture_output=True, text=True, timeout=timeout, check=False)

    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"
