"""A published version and its clauses never change: the database refuses UPDATE and DELETE (DESIGN.md inv. 4)."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError

from reviewapp.policy.models import Clause, PolicyVersion

pytestmark = pytest.mark.django_db


def _refused(change) -> None:
    with pytest.raises(DatabaseError, match="pgtrigger"), transaction.atomic():
        change()


def _raw(sql: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.mark.parametrize("change", [
    pytest.param(lambda v: PolicyVersion.objects.filter(pk=v.pk).update(title="Relaxed policy"), id="queryset update"),
    pytest.param(lambda v: (setattr(v, "text", "anything goes"), v.save()), id="save"),
    pytest.param(lambda v: _raw("UPDATE policy_policyversion SET text = %s WHERE id = %s", ["x", v.pk]), id="raw SQL"),
    pytest.param(lambda v: _raw("DELETE FROM policy_policyversion WHERE id = %s", [v.pk]), id="raw SQL delete"),
])
def test_a_published_version_cannot_be_changed_or_deleted(loaded, change):
    before = PolicyVersion.objects.filter(pk=loaded.pk).values().get()
    _refused(lambda: change(PolicyVersion.objects.get(pk=loaded.pk)))
    assert PolicyVersion.objects.filter(pk=loaded.pk).values().get() == before


@pytest.mark.parametrize("change", [
    pytest.param(lambda c: Clause.objects.filter(pk=c.pk).update(permitted_actions=["terminate"]), id="actions"),
    pytest.param(lambda c: Clause.objects.filter(pk=c.pk).update(text="Research is never allowed."), id="text"),
    pytest.param(lambda c: Clause.objects.filter(pk=c.pk).delete(), id="queryset delete"),
    pytest.param(lambda c: c.delete(), id="instance delete"),
    pytest.param(lambda c: _raw("UPDATE policy_clause SET requires_second_approval = NOT requires_second_approval "
                                "WHERE id = %s", [c.pk]), id="raw SQL"),
])
def test_a_published_clause_cannot_be_changed_or_deleted(loaded, change):
    clause = loaded.clauses.get(ref="UP-6.1")
    before = list(Clause.objects.filter(version=loaded).order_by("pk").values())
    _refused(lambda: change(Clause.objects.get(pk=clause.pk)))
    assert list(Clause.objects.filter(version=loaded).order_by("pk").values()) == before


def test_a_version_without_clauses_is_refused_by_the_trigger_not_only_by_its_foreign_keys(loaded):
    # The ORM refuses to delete a version its clauses point at (PROTECT); the trigger refuses it regardless.
    bare = PolicyVersion.objects.create(policy=loaded.policy, number=2, source_path="x.md", source_sha256="0" * 64,
                                        title="Bare", effective_from=loaded.effective_from, text="")
    _refused(lambda: PolicyVersion.objects.filter(pk=bare.pk).delete())
    _refused(lambda: bare.delete())
    assert PolicyVersion.objects.filter(pk=bare.pk).exists()
