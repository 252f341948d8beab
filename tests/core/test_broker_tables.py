"""kombu's SQLAlchemy broker tables are created once, before any worker starts, whoever asks at once.

Left to kombu, each process creates the tables on first use; two doing it at once on a fresh database
collide (``duplicate key … "pg_class_relname_nsp_index"`` / ``"queue_id_sequence"``), and a test session's
Celery worker then never becomes ready. ``ensure_broker_tables`` serialises that with an advisory lock.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psycopg
import pytest
from django.db import connection
from psycopg import sql

from reviewapp.embedded import ensure_broker_tables

from ..support import ROOT, child_env, sqla_broker_url

RACE = """
import sys, time
url, start = sys.argv[1], float(sys.argv[2])
while time.time() < start:
    time.sleep(0.001)
from reviewapp.embedded import ensure_broker_tables
ensure_broker_tables(url)
"""


@pytest.fixture
def fresh_broker_url():
    db = connection.settings_dict
    name = f"reviewapp_broker_{os.getpid()}"
    params = {"user": db["USER"], "host": db["HOST"] or None, "port": db["PORT"] or None,
              "password": db.get("PASSWORD") or None}

    def recreate():
        with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return sqla_broker_url(name)

    yield recreate
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _tables(url: str) -> set[str]:
    from sqlalchemy import create_engine, inspect

    engine = create_engine(url.removeprefix("sqla+"))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_processes_creating_the_broker_tables_at_once_all_succeed(fresh_broker_url):
    for _ in range(2):  # each round a fresh database; kombu alone failed in most rounds
        url = fresh_broker_url()
        start = time.time() + 1.5
        racers = [subprocess.Popen([sys.executable, "-c", RACE, url, str(start)], cwd=ROOT, env=child_env(),
                                   stderr=subprocess.PIPE, text=True) for _ in range(4)]
        results = [(racer.wait(60), racer.stderr.read()) for racer in racers]
        assert all(code == 0 for code, _ in results), [err[-600:] for code, err in results if code]
        assert {"kombu_queue", "kombu_message"} <= _tables(url)


def test_only_the_sqlalchemy_transport_is_touched():
    assert ensure_broker_tables("redis://127.0.0.1:1/0") is False
