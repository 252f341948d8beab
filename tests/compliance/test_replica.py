"""The opt-in read replica for compliance reporting (reviewapp/compliance/replica.py, COMPLIANCE_REPLICA_URL).

A real gunicorn runs with COMPLIANCE_REPLICA_URL pointing at the test database under a connection of its own name
and in read-only transactions, as a hot standby would refuse writes: the decision register reads through that
connection, a page that is not wrapped (the console's home) never opens it, and the register answers 200 in the
replica's read-only transactions. Without the setting (every other test) the router sends nothing but to the
primary.
"""

from __future__ import annotations

import os
import urllib.request
from urllib.parse import urlencode

import pytest
from django.db import connection

from reviewapp.cases.models import Decision
from reviewapp.compliance.replica import ComplianceReplicaRouter, replica_reads
from reviewapp.people.roles import Role
from tests import support
from tests.reliability.test_two_nodes import Gunicorn
from tests.support import child_env, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("two-nodes")]


def _replica_queries(name: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT query FROM pg_stat_activity WHERE datname = current_database() "
                       "AND application_name = %s", [name])
        return [row[0] for row in cursor.fetchall()]


def _get(web: Gunicorn, path: str, session: str) -> int:
    request = urllib.request.Request(f"{web.url()}{path}", headers={"Cookie": f"sessionid={session}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status


def test_the_register_reads_the_replica_and_no_other_page_does(client, make_staff, tmp_path):
    client.force_login(make_staff(Role.COMPLIANCE_OFFICER))
    session = client.cookies["sessionid"].value
    name = f"compliance-replica-{os.getpid()}"
    replica = support.test_database_url() + "?" + urlencode({"application_name": name,
                                                     "options": "-c default_transaction_read_only=on"})
    web = Gunicorn(child_env(COMPLIANCE_REPLICA_URL=replica, DEBUG="0"), tmp_path / "web.log").start()
    try:
        wait_for(web.answers, timeout=60, what="gunicorn")
        assert _get(web, "/compliance/", session) == 200
        assert _replica_queries(name) == [], "a page that is not wrapped read the replica"
        assert _get(web, "/compliance/decisions/", session) == 200
        queries = _replica_queries(name)
        assert queries, "the decision register did not read through the replica"
        # Its transactions are read-only (a write there would have answered 500); nothing it last ran writes.
        assert not any(query.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")) for query in queries)
    finally:
        web.stop()


def test_without_a_replica_every_read_and_write_is_the_primarys():
    router = ComplianceReplicaRouter()
    with replica_reads():
        assert router.db_for_read(Decision) is None  # no alias configured: Django's default, the primary
        assert router.db_for_write(Decision) == "default"
    assert router.db_for_read(Decision) is None
    assert router.allow_migrate("compliance_replica", "cases") is False
