"""The monthly partitions of flags_flag: made ahead, idempotent, audited, and no way round the app role's limits.

flags/partitions.py; migration flags 0007; reviewapp/core/db_roles.py (issue 12). Each test runs in its test's
transaction, so the partitions it creates go with the rollback.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.core.management import call_command
from django.db import ProgrammingError, connection, transaction
from django.utils import timezone
from psycopg import sql

from flags.models import Flag, FlagBatch
from flags.partitions import flag_partitions, flags_in_default_partition, flags_partitions_ensure
from flags.services import flags_ingest
from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.audit.services import SYSTEM
from reviewapp.core.db_roles import app_role_apply, app_role_problems
from tests.conftest import flag_payload
from tests.support import flag_received_at

pytestmark = pytest.mark.django_db


def _month(months_from_now: int) -> str:
    first = timezone.now().astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    year, month = divmod(first.month - 1 + months_from_now, 12)
    return f"flags_flag_{first.year + year}_{month + 1:02d}"


def _names() -> list[str]:
    return [p.name for p in flag_partitions()]


def _sql(statement: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else None


def test_ensure_creates_the_missing_months_once_and_audits_it():
    assert {_month(0), _month(1), _month(2)} <= set(_names())  # the migration made these
    assert _month(3) not in _names()
    created = flags_partitions_ensure(months_ahead=3)
    assert created == [_month(3)]
    assert _names()[-1] == "flags_flag_default"
    events = AuditEvent.objects.filter(action=AuditAction.FLAGS_PARTITIONS_CREATED)
    assert [e.data["partitions"] for e in events] == [[_month(3)]]
    assert flags_partitions_ensure(months_ahead=3) == []  # idempotent: nothing new, no second event
    assert events.count() == 1


def test_a_new_partition_takes_its_months_rows_out_of_the_default_partition(detector):
    """A month whose partition was missing (the task had not run): its flags wait in DEFAULT, then move."""
    flag = flag_received_at(detector, datetime(2031, 5, 10, tzinfo=UTC), "far-1")
    assert flags_in_default_partition() == 1
    _sql("SELECT flags_flag_partition_create('2031-05-01')")
    assert flags_in_default_partition() == 0
    assert _sql("SELECT tableoid::regclass::text FROM flags_flag WHERE id = %s", [flag.pk]) == [("flags_flag_2031_05",)]
    assert _sql("SELECT flags_flag_partition_create('2031-05-01')") == [(None,)]  # already there


def test_ensure_gives_a_past_month_waiting_in_default_its_partition(detector):
    """Beat was down across a month's start: that month's flags went to DEFAULT. The next run, a later month's,
    still makes their partition and moves them in (only months with rows: no empty partitions for the gap)."""
    flag = flag_received_at(detector, datetime(2025, 3, 10, tzinfo=UTC), "missed-1")
    assert flags_in_default_partition() == 1
    assert flags_partitions_ensure(months_ahead=3) == ["flags_flag_2025_03", _month(3)]
    assert flags_in_default_partition() == 0
    assert _sql("SELECT tableoid::regclass::text FROM flags_flag WHERE id = %s", [flag.pk]) == [("flags_flag_2025_03",)]
    assert "flags_flag_2025_04" not in _names()


def test_flags_partitions_command_creates_and_lists(capsys):
    call_command("flags_partitions", "--months-ahead", "4")
    out = capsys.readouterr().out
    assert "created 2 partition(s)" in out and _month(4) in out and "flags_flag_default" in out
    call_command("flags_partitions", "--list")
    assert "created" not in capsys.readouterr().out


def _role_name(suffix: str) -> str:
    base = "".join(c if c.isalnum() else "_" for c in connection.settings_dict["NAME"].lower())
    return f"{base[: 62 - len(suffix)]}_{suffix}"


def _as_role(role: str, statement: str, params=None):
    """``statement`` as ``role``, in a savepoint: on an error its rollback undoes the SET LOCAL ROLE too."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
        cursor.execute(statement, params)
        rows = cursor.fetchall() if cursor.description else None
        cursor.execute("RESET ROLE")
        return rows


def _refused_as(role: str, statement: str) -> None:
    with pytest.raises(ProgrammingError) as caught:
        _as_role(role, statement)
    assert isinstance(caught.value.__cause__, psycopg.errors.InsufficientPrivilege), caught.value


def test_the_app_role_has_nothing_on_a_partition_and_makes_new_ones_without_grants(detector):
    """The app role reaches flags through flags_flag only: a partition (one the migration made, one it makes
    itself through the maintenance function) refuses it a DELETE, an UPDATE, even a SELECT."""
    role = _role_name("app")
    app_role_apply(app_role=role)
    assert app_role_problems(app_role=role) == []
    flags_ingest(items=[(0, json.dumps(flag_payload(1)).encode())], detector=detector, actor=SYSTEM)
    this_month = _month(0)
    for statement in (f"DELETE FROM {this_month}", f"UPDATE {this_month} SET case_id = NULL",
                      f"SELECT count(*) FROM {this_month}", "DELETE FROM flags_flag_default",
                      "DELETE FROM flags_flagkey", "UPDATE flags_flagkey SET flag_id = 0",
                      "SELECT flags_flag_partition_create('2032-01-01')"):
        _refused_as(role, statement)
    assert _as_role(role, "SELECT count(*) FROM flags_flag") == [(1,)]  # through the partitioned table: yes
    assert _as_role(role, "SELECT flags_flag_default_count()") == [(0,)]  # what the command reports
    assert _as_role(role, "SELECT flags_flag_partitions_ensure(5)") == [(_month(3),), (_month(4),), (_month(5),)]
    _refused_as(role, f"DELETE FROM {_month(5)}")
    assert app_role_problems(app_role=role) == []
    # A grant slipped onto a partition by hand is what the check names.
    _sql(sql.SQL("GRANT DELETE ON {} TO {}").format(sql.Identifier(_month(1)), sql.Identifier(role)))
    assert app_role_problems(app_role=role) == [f"{role} may DELETE {_month(1)}, a partition of flags_flag"]


def test_a_flag_received_next_month_lands_in_next_months_partition(detector):
    next_month = (timezone.now().astimezone(UTC).replace(day=28) + timedelta(days=7)).replace(day=2)
    batch = FlagBatch.objects.create(detector=detector, source=FlagBatch.Source.FILE)
    flag = Flag.objects.create(
        detector=detector, external_id="next-1", detector_version="1", account_external_id="acct_n", signal="s",
        score=0.5, observed_from=next_month, observed_to=next_month, content_hash="0" * 64, batch=batch,
        received_at=next_month)
    assert _sql("SELECT tableoid::regclass::text FROM flags_flag WHERE id = %s", [flag.pk]) == [(_month(1),)]
