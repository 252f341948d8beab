"""The embedded PostgreSQL used when ``DATABASE_URL`` is unset.

``pgserver`` ships PostgreSQL 16 inside its wheel. Every process that loads the settings (web,
Celery worker and beat, ``manage.py shell`` in a second terminal, pytest workers) asks for the same
server under ``.data/pg``: the first one starts it, the others join it, and the last one to exit
stops it (``cleanup_mode="stop"``; pgserver keeps the list of joined processes beside the data).
The data stays, so a second ``make run`` finds everything the first one left.
"""

from __future__ import annotations

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

        server = pgserver.get_server(data_dir / "pg", cleanup_mode="stop")
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
