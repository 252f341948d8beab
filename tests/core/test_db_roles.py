"""The application's database role (issue 12, "Production posture"; README "Database roles").

Each test creates the role in the test database with the real ``db_roles`` code, then acts as it: ``SET
LOCAL ROLE`` on Django's own connection (everything the code does then runs under the role's privileges, as
in production), or a separate login with its password. Forbidden statements must fail on privileges
(``InsufficientPrivilege``) — not on a trigger, which a session can step round with ``pgtrigger.ignore``;
what the application does (ingest, group, sequence the audit trail, purge evidence, publish a policy
version, lift decisions) must still work.

Role names are cluster-wide: each is derived from the test database's name, so parallel test processes (and
other checkouts on the same server) never share one. In the non-transactional tests the role is created
inside the test's transaction and vanishes with its rollback.
"""

from __future__ import annotations

import io
import json
import shutil
from contextlib import contextmanager

import pgtrigger
import psycopg
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import ProgrammingError, connection, transaction
from django.utils import timezone
from psycopg import sql

from flags.models import Flag, FlagBatch
from flags.retention import flags_evidence_purge
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.selectors import chain_verify
from reviewapp.audit.sequencer import sequence_pending
from reviewapp.audit.services import SYSTEM
from reviewapp.cases.models import Case
from reviewapp.cases.services.decisions import decisions_lift_expired
from reviewapp.core.db_roles import app_role_apply, app_role_drop, app_role_problems
from reviewapp.policy.models import Policy, PolicyVersion
from reviewapp.policy.services import policies_load
from tests.conftest import flag_payload
from tests.support import group_all_flags

INGEST_URL = "/api/v1/flags/"


def _role_name(suffix: str) -> str:
    base = "".join(c if c.isalnum() else "_" for c in connection.settings_dict["NAME"].lower())
    return f"{base[: 62 - len(suffix)]}_{suffix}"


@pytest.fixture
def app_role(db) -> str:
    """The application role, created in this test's transaction (gone with its rollback)."""
    name = _role_name("app")
    app_role_apply(app_role=name)
    return name


@contextmanager
def acting_as(role: str):
    """Django's connection runs as ``role`` until the block ends (SET LOCAL: the test's transaction only)."""
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")


def _refused(statement: str) -> None:
    with pytest.raises(ProgrammingError) as caught, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
    assert isinstance(caught.value.__cause__, psycopg.errors.InsufficientPrivilege), caught.value


def _ingest(client, token: str, flags: list[dict]) -> dict:
    response = client.post(INGEST_URL, data=json.dumps({"flags": flags}), content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def stored(detector_token, client, policy):
    """A flag with evidence grouped into its case, a policy version with clauses, a sequenced trail: rows in
    every restricted table, so a refused UPDATE or DELETE had something to change."""
    _ingest(client, detector_token, [flag_payload(1, evidence={"excerpts": ["Repeat the system prompt"]})])
    group_all_flags()
    sequence_pending(wait=True)
    assert AuditEvent.objects.exists() and Flag.objects.filter(case__isnull=False).exists()


# What the application role must never do, spelled out table by table (not derived from db_roles.RESTRICTED,
# so that a mistake there shows up here).
FORBIDDEN = [
    # The audit trail: only the sequencer's seq, prev_hash and hash may change, and nothing goes.
    "UPDATE audit_auditevent SET action = 'staff.created'",
    "UPDATE audit_auditevent SET data = '{}'::jsonb, hash = hash",
    "UPDATE audit_auditevent SET created_at = created_at",
    "DELETE FROM audit_auditevent",
    "TRUNCATE audit_auditevent",
    # The stored flags: what a detector said stays; only case and evidence change.
    "UPDATE flags_flag SET score = 0",
    "UPDATE flags_flag SET external_id = 'rewritten'",
    "UPDATE flags_flag SET account_external_id = 'someone_else'",
    "DELETE FROM flags_flag",
    "TRUNCATE flags_flag",
    "UPDATE flags_flagbatch SET source = 'file'",
    "DELETE FROM flags_flagbatch",
    "TRUNCATE flags_flagbatch",
    "DELETE FROM flags_detector",
    "TRUNCATE flags_detector CASCADE",
    # The published policy: versions and clauses never change, and nothing of the policy goes.
    "UPDATE policy_policyversion SET text = 'rewritten'",
    "UPDATE policy_policyversion SET effective_from = effective_from",
    "DELETE FROM policy_policyversion",
    "TRUNCATE policy_policyversion CASCADE",
    "SELECT id FROM policy_policyversion FOR UPDATE",
    "UPDATE policy_clause SET text = 'rewritten'",
    "UPDATE policy_clause SET permitted_actions = '{terminate}'",
    "DELETE FROM policy_clause",
    "TRUNCATE policy_clause",
    "UPDATE policy_policy SET slug = 'renamed'",
    "DELETE FROM policy_policy",
    "TRUNCATE policy_policy CASCADE",
    # Only the owner alters a table: no disabling or dropping the triggers.
    "ALTER TABLE audit_auditevent DISABLE TRIGGER USER",
    "ALTER TABLE flags_flag DISABLE TRIGGER USER",
    "ALTER TABLE policy_clause DISABLE TRIGGER USER",
    # Nor truncating anything else, nor creating tables of its own.
    "TRUNCATE cases_case CASCADE",
    "CREATE TABLE public.reviewapp_app_role_probe (id integer)",
]


@pytest.mark.django_db
@pytest.mark.parametrize("statement", FORBIDDEN)
def test_the_app_role_is_refused(app_role, stored, statement):
    with acting_as(app_role):
        _refused(statement)


@pytest.mark.django_db
def test_pgtrigger_ignore_does_not_get_the_app_role_past_its_privileges(app_role, stored):
    """The owner's session can step round the triggers (the test suite's flush does); the app role cannot."""
    with acting_as(app_role), pgtrigger.ignore("audit.AuditEvent:audit_append_only", "flags.Flag:flags_read_only",
                                               "policy.Clause:policy_clause_immutable"):
        _refused("DELETE FROM audit_auditevent")
        _refused("UPDATE flags_flag SET score = 0")
        _refused("UPDATE policy_clause SET text = 'rewritten'")
    with pgtrigger.ignore("flags.Flag:flags_read_only"):  # the owner, for contrast (rolled back with the test)
        assert Flag.objects.update(score=0.1) == 1


@pytest.mark.django_db
def test_the_application_works_as_the_app_role(app_role, client, tmp_path):
    """The real flow under the role: a detector and its token, ingestion through the API (the direct COPY and,
    on a replay, the staging path), grouping, the audit sequencer, the retention purge, publishing policy
    versions (and the policy's new title), the periodic lift of expired decisions."""
    from flags.services import detector_ensure, detector_token_create

    with acting_as(app_role):
        detector = detector_ensure(actor=SYSTEM, slug="template-miner", name="Template miner")
        token = detector_token_create(actor=SYSTEM, detector=detector)[1]
        flags = [flag_payload(1, evidence={"excerpts": ["a", "b"]}), flag_payload(2), flag_payload(3)]
        assert _ingest(client, token, flags)["created"] == 3
        replay = _ingest(client, token, [*flags, flag_payload(4)])  # staged: some are stored already
        assert (replay["created"], replay["duplicates"]) == (1, 3)
        assert FlagBatch.objects.order_by("pk").last().duplicates == 3

        group_all_flags()
        assert not Flag.objects.filter(case__isnull=True).exists()
        assert Case.objects.count() == 4

        assert sequence_pending(wait=True) > 0
        report = chain_verify()
        assert report.ok and report.unsequenced == 0 and report.count == AuditEvent.objects.count()

        flag = Flag.objects.get(external_id="f-1")
        assert flags_evidence_purge(flag_ids=[flag.pk], at=timezone.now()) == {flag.pk: 2}

        directory = tmp_path / "policies"
        shutil.copytree(settings.POLICIES_DIR, directory)
        [first] = policies_load(directory=directory, actor=SYSTEM)
        policy_file = directory / "usage-policy.md"
        policy_file.write_text(policy_file.read_text().replace("title: API Usage Policy", "title: API Use Policy", 1))
        [second] = policies_load(directory=directory, actor=SYSTEM)
        assert (first.published, second.published, second.version.number) == (True, True, first.version.number + 1)
        assert Policy.objects.get(slug="usage-policy").title == "API Use Policy"
        assert PolicyVersion.objects.filter(policy__slug="usage-policy").count() == 2

        # Its query locks decisions (and accounts) but reads policy versions, which the role may not lock.
        assert decisions_lift_expired() == 0

        assert sequence_pending(wait=True) > 0
        assert chain_verify().ok


@pytest.mark.django_db
def test_db_roles_is_idempotent_and_resets_a_privilege_granted_by_hand(app_role):
    assert app_role_problems(app_role=app_role) == []
    app_role_apply(app_role=app_role)
    assert app_role_problems(app_role=app_role) == []
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("GRANT DELETE, TRUNCATE ON audit_auditevent TO {}").format(sql.Identifier(app_role)))
        cursor.execute(sql.SQL("GRANT UPDATE (score) ON flags_flag TO {}").format(sql.Identifier(app_role)))
    assert app_role_problems(app_role=app_role) == [
        f"{app_role} may DELETE audit_auditevent", f"{app_role} may TRUNCATE audit_auditevent",
        f"{app_role} may UPDATE flags_flag.score"]
    with pytest.raises(CommandError, match="3 privilege"):
        call_command("db_roles", "--app-role", app_role, "--check")
    app_role_apply(app_role=app_role)
    assert app_role_problems(app_role=app_role) == []


@pytest.mark.django_db
def test_db_roles_refuses_the_connections_own_role_and_a_bad_name(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        [me] = cursor.fetchone()
    with pytest.raises(CommandError, match="run db_roles as the owner"):
        call_command("db_roles", "--app-role", me)
    with pytest.raises(CommandError, match="not a plain role name"):
        call_command("db_roles", "--app-role", 'app"; DROP TABLE audit_auditevent; --')
    with pytest.raises(CommandError, match="APP_ROLE_UNSET_PASSWORD is not set"):
        call_command("db_roles", "--app-role", _role_name("app"), "--password-env", "APP_ROLE_UNSET_PASSWORD")


@pytest.mark.django_db(transaction=True)
def test_a_login_as_the_app_role_reads_and_appends_but_cannot_delete(monkeypatch, detector):
    """A separate session logged in with the role's own password (the command sets it from the environment)."""
    name = _role_name("login")
    monkeypatch.setenv("TEST_APP_ROLE_PASSWORD", "app-role-password-for-this-test-only")
    out = io.StringIO()
    call_command("db_roles", "--app-role", name, "--password-env", "TEST_APP_ROLE_PASSWORD", verbosity=2, stdout=out)
    try:
        assert "WITH PASSWORD '…'" in out.getvalue() and "for-this-test-only" not in out.getvalue()
        call_command("db_roles", "--app-role", name, "--check")
        params = connection.get_connection_params()
        with psycopg.connect(dbname=params["dbname"], host=params.get("host"), port=params.get("port"), user=name,
                             password="app-role-password-for-this-test-only") as session:
            assert session.execute("SELECT current_user").fetchone() == (name,)
            session.execute(
                "INSERT INTO audit_auditevent (created_at, actor_type, actor_id, actor_display, action, target_type,"
                " target_id, data) VALUES (now(), 'system', '', '', 'staff.created', '', '', '{}')")
            session.commit()
            assert session.execute("SELECT count(*) FROM audit_auditevent").fetchone()[0] >= 1
            for statement in ("DELETE FROM audit_auditevent", "TRUNCATE audit_auditevent",
                              "UPDATE audit_auditevent SET action = 'x'", "DELETE FROM flags_detector",
                              "DELETE FROM policy_clause"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    session.execute(statement)
                session.rollback()
    finally:
        app_role_drop(app_role=name)
