"""Run any part of the suite with the test process connected as the application's database role.

    pytest -p tests.app_role tests/flags tests/cases …

After the test database is made (as the owner, like ``migrate`` in production), ``db_roles``' own code creates
the application role there, and every connection this process opens runs ``SET ROLE`` to it: each test's own
code and the application code it calls then have only the app role's privileges (README "Database roles").
The harness steps back to the owner only for what it does itself between tests (the flush of transactional
tests, which TRUNCATEs). Subprocesses (the Celery worker, ``manage.py`` runs) connect as the owner, as before.

Expected failures, and why (measured on 2026-12-03 over tests/policy, audit, flags, cases, appeals, forum,
outbox and people, -n 2: 970 passed, 35 failed, 1 error that passed when rerun alone):

* tests that play an intruder with the owner's or a superuser's rights to give verification something to
  find (``pgtrigger.ignore``, ``SET session_replication_role = replica``): as the app role that tampering is
  refused, which is the point (tests/audit/test_chain.py, test_checkpoints.py);
* tests that expect the trigger's "pgtrigger: Cannot …" message: the privilege check refuses first, with
  "permission denied for table …" (tests/policy/test_immutability.py, tests/flags/test_ingest_api.py);
* two concurrency tests that watch other sessions wait in ``pg_stat_activity``
  (tests/flags/test_concurrency.py, tests/cases/test_review_api.py): sessions that only ``SET ROLE`` keep
  the owner as their session user, whose activity a role outside it cannot see (real logins as the app
  role see each other);
* in tests/flags/test_partitions.py, the test that calls ``flags_flag_partition_create`` itself (the owner's
  alone; the role goes through ``flags_flag_partitions_ensure``) and the one that creates a role;
* whatever fails without this plugin too.

Over tests/compliance and tests/core (-n 2): 299 passed; the 10 failures age or tamper with restricted rows
to set a test up (``pgtrigger.ignore`` then an UPDATE of ``created_at``/``received_at``), and
tests/core/test_db_roles.py errors as a whole, since it creates roles, which the app role may not.

Not part of ``make test``; tests/core/test_db_roles.py is.
"""

from __future__ import annotations

import pytest
from django.db import connections
from django.db.backends.signals import connection_created
from django.test import TransactionTestCase
from psycopg import sql


def _role_name() -> str:
    base = "".join(c if c.isalnum() else "_" for c in connections["default"].settings_dict["NAME"].lower())
    return f"{base[:58]}_apps"


def _set_role(role: str | None, connection) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)) if role else "RESET ROLE")


@pytest.fixture(scope="session", autouse=True)
def _as_the_app_role(django_db_setup, django_db_blocker):
    from reviewapp.core.db_roles import app_role_apply, app_role_drop

    with django_db_blocker.unblock():
        role = _role_name()
        app_role_apply(app_role=role)

        def on_connect(sender, connection, **kwargs):
            if connection.alias == "default":
                _set_role(role, connection)

        connection_created.connect(on_connect, weak=False, dispatch_uid="tests.app_role")
        connections["default"].close()  # the next query opens a connection as the role

        as_role_teardown = TransactionTestCase._fixture_teardown

        def teardown_as_owner(self):
            connection = connections["default"]
            if connection.connection is not None:
                _set_role(None, connection)
            try:
                return as_role_teardown(self)
            finally:
                if connection.connection is not None:
                    _set_role(role, connection)

        TransactionTestCase._fixture_teardown = teardown_as_owner
        try:
            yield role
        finally:
            TransactionTestCase._fixture_teardown = as_role_teardown
            connection_created.disconnect(dispatch_uid="tests.app_role")
            connections["default"].close()
            app_role_drop(app_role=role)
