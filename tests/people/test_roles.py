"""Roles are groups created by migration; each holds exactly the permissions roles.py lists."""

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured

from reviewapp.people import roles
from reviewapp.people.roles import ROLE_PERMISSIONS, Role, sync_groups

pytestmark = pytest.mark.django_db


def _perms(group: Group) -> set[str]:
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}


def test_every_role_exists_with_exactly_its_permissions():
    for role in Role:
        assert _perms(Group.objects.get(name=role.value)) == ROLE_PERMISSIONS[role]


def test_compliance_officers_can_read_but_never_change():
    perms = _perms(Group.objects.get(name=Role.COMPLIANCE_OFFICER))
    assert "audit.view_auditevent" in perms
    assert not [p for p in perms if p.split(".")[1].startswith(("add_", "change_", "delete_"))]


def test_senior_reviewers_hold_everything_reviewers_hold():
    assert ROLE_PERMISSIONS[Role.REVIEWER] <= ROLE_PERMISSIONS[Role.SENIOR_REVIEWER]


def test_sync_names_a_permission_that_does_not_exist(monkeypatch):
    broken = {**ROLE_PERMISSIONS, Role.REVIEWER: {"audit.fly_to_the_moon"}}
    monkeypatch.setattr(roles, "ROLE_PERMISSIONS", broken)
    with pytest.raises(ImproperlyConfigured, match=r"reviewer: permission audit.fly_to_the_moon does not exist"):
        sync_groups()


def test_sync_removes_permissions_granted_by_hand():
    group = Group.objects.get(name=Role.REVIEWER)
    from django.contrib.auth.models import Permission

    group.permissions.add(Permission.objects.get(codename="view_auditevent"))
    sync_groups()
    assert _perms(group) == ROLE_PERMISSIONS[Role.REVIEWER]
