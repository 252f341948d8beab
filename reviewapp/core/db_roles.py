"""The application's database role: what the web processes and workers may do to the tables.

Issue 12, "Production posture"; DESIGN.md invariants 1, 3 and 4. The triggers on the audit trail, the
stored flags and the published policy refuse UPDATE, DELETE and TRUNCATE, but a trigger is only as strong
as the role it guards against: the role that owns a table may drop or disable its triggers, and any
session may ``SET pgtrigger.ignore`` (what ``pgtrigger.ignore`` does) to step round them. So in
production the application connects as a role that owns nothing and holds, on those tables, only the
privileges the code needs. PostgreSQL checks privileges before any trigger runs, and no session setting
widens them.

Two roles, then:

* the **owner** owns the schema: ``migrate`` and then ``db_roles`` (which calls ``app_role_apply`` here)
  run with ``DATABASE_URL`` set to the owner's URL (README "Database roles");
* the **application role** (``DATABASE_URL``) gets full DML (SELECT, INSERT, UPDATE, DELETE) on every
  other table and USAGE on the sequences, and on the tables of ``RESTRICTED`` no DELETE, no TRUNCATE
  and UPDATE of the listed columns only; never TRUNCATE, REFERENCES or TRIGGER anywhere.

Why each column is there is said beside it. A column-level UPDATE is also what ``SELECT … FOR UPDATE``
needs (UPDATE on at least one column), so grouping and the retention purge can lock the flags they
change; a table without any UPDATE (a policy version) can be read but never locked, so no query locks
one (``cases.services.decisions`` locks only its own rows).

``ALTER DEFAULT PRIVILEGES`` gives tables a later migration creates full DML at once, so a new table
works before anyone remembers this command; a new table that must be restricted (a new append-only log)
becomes so when ``db_roles`` runs after that ``migrate`` — hence: after every ``migrate``.

A partitioned table's partitions (flags_flag's months, docs/flags-partitions.md) give the role nothing at
all: it reaches their rows through the partitioned table, whose privileges are the ones PostgreSQL checks,
and a grant on a partition (which ``ALTER DEFAULT PRIVILEGES`` would give) would let it DELETE there. The
maintenance task creates next months' partitions through ``flags_flag_partitions_ensure``, a SECURITY
DEFINER function of the owner that revokes the default grants on each partition it makes; the role may
EXECUTE that function (``EXECUTABLE``) and nothing else of the owner's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.apps import apps
from django.db import connections, transaction
from psycopg import sql

# A role name we put into SQL ourselves: plain identifiers only (no quoting surprises in a DO block).
ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
ALL_COLUMNS = None  # Restricted.update: the app may UPDATE every column (but still never DELETE)


class DbRoleError(Exception):
    """The role cannot be set up as asked (a bad name, the owner itself, a member of the owner)."""


@dataclass(frozen=True)
class Restricted:
    """A table the application may insert into and read, but never delete from or truncate."""

    model: str  # "app_label.ModelName"
    update: tuple[str, ...] | None  # field names the app may UPDATE; () none; ALL_COLUMNS every one
    why: str

    @property
    def table(self) -> str:
        return apps.get_model(self.model)._meta.db_table

    def update_columns(self) -> list[str] | None:
        if self.update is ALL_COLUMNS:
            return None
        opts = apps.get_model(self.model)._meta
        return [opts.get_field(name).column for name in self.update]

    def other_columns(self) -> list[str]:
        """The columns the app may not UPDATE."""
        allowed = set(self.update_columns() or [])
        opts = apps.get_model(self.model)._meta
        return [f.column for f in opts.concrete_fields if f.column not in allowed] if self.update is not None else []


RESTRICTED: tuple[Restricted, ...] = (
    Restricted("audit.AuditEvent", update=("seq", "prev_hash", "hash"),
               why="the audit trail is append-only; the sequencer gives a committed event its seq and hashes, once "
                   "(audit/sequencer.py)"),
    Restricted("flags.Flag", update=("case", "evidence"),
               why="what a detector said is never rewritten; grouping attaches the case (flags/grouping.py), the "
                   "retention purge replaces the evidence with its marker (flags/retention.py)"),
    Restricted("flags.FlagKey", update=(),
               why="a stored flag's (detector, external_id): what deduplication reads; written once with its flag "
                   "(flags/services.py)"),
    Restricted("flags.FlagBatch", update=("created", "duplicates", "conflicts", "rejected"),
               why="an ingestion receipt; its counts are written when its flags are stored (flags/services.py)"),
    Restricted("flags.Detector", update=ALL_COLUMNS,
               why="a detector is deactivated, never deleted: its flags keep pointing at it"),
    Restricted("policy.Policy", update=("title",),
               why="a policy's current title follows its file (policy/services.py); its versions hold the text"),
    Restricted("policy.PolicyVersion", update=(),
               why="a published version never changes; a new text is a new version"),
    Restricted("policy.Clause", update=(),
               why="a published clause never changes; decisions cite it as worded"),
)

# Functions of the owner the app role may call, with why.
EXECUTABLE: tuple[tuple[str, str], ...] = (
    ("flags_flag_partitions_ensure(integer)",
     "the maintenance task creates next months' flags partitions ahead (flags/partitions.py)"),
    ("flags_flag_default_count()",
     "how many flags wait in the DEFAULT partition, which the role may not read (manage.py flags_partitions)"),
)

_DML = "SELECT, INSERT, UPDATE, DELETE"
_TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
# Every partition, at any depth, of a table (none for a plain table).
_PARTITIONS = """
WITH RECURSIVE tree(relid) AS (
    SELECT inhrelid FROM pg_inherits WHERE inhparent = to_regclass(%s)
    UNION ALL SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.relid
)
SELECT c.relname FROM tree JOIN pg_class c ON c.oid = tree.relid ORDER BY c.relname
"""


def _partitions(cursor, table: str) -> list[str]:
    cursor.execute(_PARTITIONS, [table])
    return [name for (name,) in cursor.fetchall()]


def _ident(name: str) -> sql.Identifier:
    return sql.Identifier(name)


def _columns(columns: list[str]) -> sql.Composable:
    return sql.SQL(", ").join(_ident(column) for column in columns)


def _check_name(app_role: str) -> None:
    if not ROLE_NAME.match(app_role):
        raise DbRoleError(f"{app_role!r} is not a plain role name (lower-case letters, digits and _, at most 63)")


def _statements(*, app_role: str, schema: str, database: str, owner: str, password: str | None,
                partitions: dict[str, list[str]]) -> list:
    role, sch = _ident(app_role), _ident(schema)
    name = sql.Literal(app_role)
    statements = [
        # Idempotent, and safe against a second run creating it at the same moment.
        sql.SQL("DO $do$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {name}) THEN "
                "EXECUTE format('CREATE ROLE %I LOGIN', {name}); END IF; "
                "EXCEPTION WHEN duplicate_object THEN NULL; END $do$").format(name=name),
        # A superuser or BYPASSRLS role skips every privilege check; the app role never is one.
        sql.SQL("ALTER ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS").format(role),
    ]
    if password is not None:
        statements.append(sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(role, sql.Literal(password)))
    statements += [
        sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(_ident(database), role),  # ingestion stages
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sch, role),  # never CREATE: the owner makes tables
        # From nothing, so a privilege granted by hand (or by an older run) does not linger.
        sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(sch, role),
        sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {} FROM {}").format(sch, role),
        sql.SQL("GRANT " + _DML + " ON ALL TABLES IN SCHEMA {} TO {}").format(sch, role),
        sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}").format(sch, role),
    ]
    for restricted in RESTRICTED:
        table = sql.Identifier(schema, restricted.table)
        # PUBLIC too: a grant to everyone would be one to the app role.
        statements.append(sql.SQL("REVOKE UPDATE, DELETE, TRUNCATE ON {} FROM {}, PUBLIC").format(table, role))
        columns = restricted.update_columns()
        if columns is None:
            statements.append(sql.SQL("GRANT UPDATE ON {} TO {}").format(table, role))
        elif columns:
            statements.append(sql.SQL("GRANT UPDATE ({}) ON {} TO {}").format(_columns(columns), table, role))
        for partition in partitions.get(restricted.table, []):
            statements.append(sql.SQL("REVOKE ALL ON {} FROM {}, PUBLIC").format(
                sql.Identifier(schema, partition), role))
    for function, _why in EXECUTABLE:
        statements.append(sql.SQL("GRANT EXECUTE ON FUNCTION {}.{} TO {}").format(sch, sql.SQL(function), role))
    statements += [
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT " + _DML + " ON TABLES TO {}").format(
            _ident(owner), sch, role),
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT USAGE, SELECT ON SEQUENCES TO {}").format(
            _ident(owner), sch, role),
    ]
    return statements


def app_role_problems(*, app_role: str, using: str = "default") -> list[str]:
    """What the app role may do but must not, or must do but may not, on the restricted tables; [] when right.

    Asked of PostgreSQL itself (``has_table_privilege``, ``has_column_privilege``), so memberships and grants
    to PUBLIC count as they would for a real session.
    """
    problems = []
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = %s", [app_role])
        row = cursor.fetchone()
        if row is None:
            return [f"role {app_role} does not exist"]
        if row[0]:
            problems.append(f"role {app_role} is a superuser or bypasses row security: privileges do not bind it")
        for restricted in RESTRICTED:
            table = restricted.table
            for privilege in ("DELETE", "TRUNCATE", "TRIGGER", "REFERENCES"):
                cursor.execute("SELECT has_table_privilege(%s, %s, %s)", [app_role, table, privilege])
                if cursor.fetchone()[0]:
                    problems.append(f"{app_role} may {privilege} {table}")
            for privilege in ("SELECT", "INSERT"):
                cursor.execute("SELECT has_table_privilege(%s, %s, %s)", [app_role, table, privilege])
                if not cursor.fetchone()[0]:
                    problems.append(f"{app_role} may not {privilege} {table}")
            for column in restricted.other_columns():
                cursor.execute("SELECT has_column_privilege(%s, %s, %s, 'UPDATE')", [app_role, table, column])
                if cursor.fetchone()[0]:
                    problems.append(f"{app_role} may UPDATE {table}.{column}")
            for column in restricted.update_columns() or []:
                cursor.execute("SELECT has_column_privilege(%s, %s, %s, 'UPDATE')", [app_role, table, column])
                if not cursor.fetchone()[0]:
                    problems.append(f"{app_role} may not UPDATE {table}.{column}, which the application needs")
            cursor.execute("SELECT pg_has_role(%s, tableowner, 'USAGE') FROM pg_tables "
                           "WHERE schemaname = current_schema() AND tablename = %s", [app_role, table])
            owned = cursor.fetchone()
            if owned and owned[0]:
                problems.append(f"{app_role} owns {table} (or acts as its owner): it could drop its triggers")
            for partition in _partitions(cursor, table):
                for privilege in _TABLE_PRIVILEGES:
                    cursor.execute("SELECT has_table_privilege(%s, %s, %s)", [app_role, partition, privilege])
                    if cursor.fetchone()[0]:
                        problems.append(f"{app_role} may {privilege} {partition}, a partition of {table}")
        for function, _why in EXECUTABLE:
            cursor.execute("SELECT to_regprocedure(%s) IS NULL OR has_function_privilege(%s, %s, 'EXECUTE')",
                           [function, app_role, function])
            if not cursor.fetchone()[0]:
                problems.append(f"{app_role} may not EXECUTE {function}, which the application needs")
    return problems


def app_role_apply(*, app_role: str, password: str | None = None, using: str = "default") -> list[str]:
    """Create the application role if needed and set its privileges from nothing; return the statements run.

    Run by the owner after ``migrate`` (the ``db_roles`` command), in one transaction: on any error, or if
    the result is not what ``app_role_problems`` expects, nothing changes. Idempotent.
    """
    _check_name(app_role)
    connection = connections[using]
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute("SELECT current_user, current_schema(), current_database()")
        owner, schema, database = cursor.fetchone()
        if owner == app_role:
            raise DbRoleError(f"{app_role} is the role this connection uses: run db_roles as the owner "
                              "(DATABASE_URL set to the owner's URL), naming the role the application connects as")
        cursor.execute("SELECT pg_has_role(%s, %s, 'USAGE') FROM pg_roles WHERE rolname = %s",
                       [app_role, owner, app_role])
        member = cursor.fetchone()
        if member and member[0]:
            raise DbRoleError(f"{app_role} is a member of {owner}, the owner: it would hold all of the owner's "
                              f"rights. REVOKE {owner} FROM {app_role} first")
        partitions = {restricted.table: _partitions(cursor, restricted.table) for restricted in RESTRICTED}
        statements = _statements(app_role=app_role, schema=schema, database=database, owner=owner,
                                 password=password, partitions=partitions)
        for statement in statements:
            cursor.execute(statement)
        problems = app_role_problems(app_role=app_role, using=using)
        if problems:
            raise DbRoleError("the grants did not come out as intended: " + "; ".join(problems))
    return [statement.as_string(None) if password is None else _redacted(statement, password)
            for statement in statements]


def _redacted(statement: sql.Composable, password: str) -> str:
    text = statement.as_string(None)
    return text.replace(sql.Literal(password).as_string(None), "'…'")


def app_role_drop(*, app_role: str, using: str = "default") -> None:
    """Take the role's privileges in this database away and drop the role (tests; a role being replaced).

    ``DROP OWNED`` clears its grants and default privileges here; the role itself is dropped only if no other
    database still holds grants to it.
    """
    _check_name(app_role)
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [app_role])
        if cursor.fetchone() is None:
            return
        cursor.execute(sql.SQL("DROP OWNED BY {}").format(_ident(app_role)))
        cursor.execute(sql.SQL("DROP ROLE {}").format(_ident(app_role)))
