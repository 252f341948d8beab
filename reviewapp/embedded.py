"""The embedded PostgreSQL used when ``DATABASE_URL`` is unset.

``pgserver`` ships PostgreSQL 16 inside its wheel. Every process that loads the settings (web,
Celery worker and beat, ``manage.py shell`` in a second terminal, pytest workers) asks for the same
server under ``.data/pg``: the first one starts it, the others join it, and the last one to exit
stops it (``cleanup_mode="stop"``; pgserver keeps the list of joined processes beside the data, in
``.data/pg/.handle_pids.json``). A process that was SIGKILLed never takes itself off that list, and
pgserver stops the server only when the exiting process is the last one listed; so every process
prunes the dead pids from the list when it joins and again just before pgserver's own exit handler
decides — whoever is the last *live* user stops the server.
The data stays, so a second ``make run`` finds everything the first one left.

``ensure_broker_tables`` creates kombu's SQLAlchemy broker tables once, under an advisory lock, before
any worker starts (kombu would create them on first use, and two processes doing so at once collide).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

DATABASE_NAME = "reviewapp"
USER = "postgres"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbeddedServer:
    socket_dir: Path
    port: int

    def database_settings(self, name: str = DATABASE_NAME) -> dict:
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": USER,
            "HOST": str(self.socket_dir),
            "PORT": str(self.port),
        }

    def broker_url(self, name: str = DATABASE_NAME) -> str:
        # kombu's SQLAlchemy transport, through psycopg 3, on a unix socket.
        return f"sqla+postgresql+psycopg://{USER}@/{name}?host={self.socket_dir}&port={self.port}"


def ensure_running(data_dir: Path) -> EmbeddedServer:
    """Start (or join) the embedded server under ``data_dir / "pg"`` and make sure our database exists."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); its fallback is fine.
        warnings.simplefilter("ignore")
        import pgserver

        pgdata = (data_dir / "pg").resolve()
        prune_dead_handles(pgdata)
        server = pgserver.get_server(pgdata, cleanup_mode="stop")
    # atexit runs handlers last-registered first: this one runs just before pgserver's, which stops the
    # server when this process is the only one left on the list.
    atexit.register(prune_dead_handles, pgdata)
    info = server.get_postmaster_info()
    embedded = EmbeddedServer(socket_dir=info.socket_dir, port=info.port)
    _ensure_database(embedded)
    _offer_psql()
    return embedded


def _offer_psql() -> None:
    """`manage.py dbshell` needs psql; the wheel ships one, so use it when the machine has none."""
    if shutil.which("psql") is None:
        from pgserver._commands import POSTGRES_BIN_PATH

        os.environ["PATH"] = f"{POSTGRES_BIN_PATH}{os.pathsep}{os.environ.get('PATH', '')}"


def _ensure_database(embedded: EmbeddedServer) -> None:
    import psycopg
    from psycopg import errors, sql

    with psycopg.connect(
        dbname="postgres", user=USER, host=str(embedded.socket_dir), port=embedded.port, autocommit=True
    ) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
        if not exists:
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE_NAME)))
                log.info("created embedded database %s", DATABASE_NAME)
            except errors.DuplicateDatabase:
                pass  # another process created it a moment ago


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def prune_dead_handles(pgdata: Path) -> list[int]:
    """Drop the pids of processes that are gone from pgserver's handle list; return the live ones."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs, as in ensure_running
        from pgserver.postgres_server import PostgresServer

    path = Path(pgdata) / ".handle_pids.json"
    with PostgresServer._lock:
        try:
            pids = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return []
        live = [pid for pid in pids if pid == os.getpid() or _alive(pid)]
        if live != pids:
            path.write_text(json.dumps(live))
            log.info("embedded PostgreSQL: dropped %d dead process(es) from %s", len(pids) - len(live), path)
    return live


def running_server_pid(pgdata: Path) -> int | None:
    """The postmaster's pid if a server is running on ``pgdata``."""
    try:
        pid = int((Path(pgdata) / "postmaster.pid").read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None
    return pid if _alive(pid) else None


_BROKER_LOCK = 0x6B6F6D6275  # pg_advisory_lock key: "kombu"


def ensure_broker_tables(broker_url: str) -> bool:
    """Create kombu's SQLAlchemy transport tables (and sequences) if the broker is that transport.

    Serialised with an advisory lock on the broker's database, so any number of processes may call it at
    once; kombu's own ``create_all`` in each worker then finds the tables there. Returns whether the broker
    is the SQLAlchemy transport.
    """
    if not broker_url.startswith("sqla+"):
        return False
    from kombu import Connection
    from sqlalchemy import create_engine, text

    engine = create_engine(broker_url.removeprefix("sqla+"))
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _BROKER_LOCK})
            try:
                with Connection(broker_url) as broker:
                    broker.default_channel.session  # noqa: B018 — opening the session runs kombu's create_all
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _BROKER_LOCK})
    finally:
        engine.dispose()
    return True
