"""Staff management: `create_staff`, the staff page, role changes and deactivation, each audited."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.urls import reverse

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.models import AuditEvent
from reviewapp.people.roles import Role
from reviewapp.people.selectors import role_of

pytestmark = pytest.mark.django_db
User = get_user_model()


def test_create_staff_command_creates_one_role_and_prints_the_password():
    out = io.StringIO()
    call_command("create_staff", "nadia", "--role", "senior_reviewer", stdout=out)
    user = User.objects.get(username="nadia")
    assert role_of(user) == Role.SENIOR_REVIEWER
    password = out.getvalue().strip().splitlines()[-1].removeprefix("One-time password: ")
    assert user.check_password(password)
    event = AuditEvent.objects.get(action=AuditAction.STAFF_CREATED, target_id=str(user.pk))
    assert event.data == {"username": "nadia", "role": "senior_reviewer", "email": ""}
    assert event.actor_id == "manage.py create_staff"


def test_create_staff_refuses_a_duplicate_and_an_unknown_role():
    call_command("create_staff", "nadia", "--role", "reviewer", stdout=io.StringIO())
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_staff", "NADIA", "--role", "reviewer", stdout=io.StringIO())
    with pytest.raises(CommandError, match=r"invalid choice: 'overlord'"):
        call_command("create_staff", "omar", "--role", "overlord", stdout=io.StringIO())


def test_create_staff_refuses_a_weak_password_and_names_why():
    with pytest.raises(CommandError, match=r"password rejected: .*too short"):
        call_command("create_staff", "omar", "--role", "reviewer", "--password", "abc", stdout=io.StringIO())
    assert not User.objects.filter(username="omar").exists()
    assert not AuditEvent.objects.filter(action=AuditAction.STAFF_CREATED).exists()


def test_only_admins_manage_staff(client, make_staff):
    client.force_login(make_staff(Role.REVIEWER))
    assert client.get(reverse("people:staff")).status_code == 403
    assert client.post(reverse("people:staff-create"), {"username": "x", "role": "admin"}).status_code == 403
    assert not User.objects.filter(username="x").exists()


def test_compliance_reads_the_staff_list_but_cannot_change_it(client, make_staff):
    target = make_staff(Role.REVIEWER)
    client.force_login(make_staff(Role.COMPLIANCE_OFFICER))
    page = client.get(reverse("people:staff"))
    assert page.status_code == 200 and target.username.encode() in page.content
    assert b"Set role" not in page.content
    response = client.post(reverse("people:staff-role", args=[target.pk]), {"role": "admin"})
    assert response.status_code == 403
    assert role_of(target) == Role.REVIEWER


def test_admin_creates_changes_role_and_deactivates(client, make_staff):
    admin = make_staff(Role.ADMIN)
    client.force_login(admin)
    response = client.post(reverse("people:staff-create"), {"username": "kofi", "role": "reviewer"}, follow=True)
    assert b"one-time password" in response.content
    kofi = User.objects.get(username="kofi")
    client.post(reverse("people:staff-role", args=[kofi.pk]), {"role": "senior_reviewer"})
    assert role_of(kofi) == Role.SENIOR_REVIEWER
    client.post(reverse("people:staff-active", args=[kofi.pk]), {"active": "0", "confirm": "1"})
    kofi.refresh_from_db()
    assert not kofi.is_active
    actions = list(AuditEvent.objects.filter(target_id=str(kofi.pk), actor_id=str(admin.pk))
                   .order_by("id").values_list("action", flat=True))
    assert actions == [AuditAction.STAFF_CREATED, AuditAction.STAFF_PASSWORD_ISSUED, AuditAction.STAFF_ROLE_CHANGED,
                       AuditAction.STAFF_DEACTIVATED]


def test_admin_cannot_deactivate_themselves(client, make_staff):
    admin = make_staff(Role.ADMIN)
    client.force_login(admin)
    response = client.post(reverse("people:staff-active", args=[admin.pk]), {"active": "0", "confirm": "1"},
                           follow=True)
    assert b"cannot deactivate yourself" in response.content
    admin.refresh_from_db()
    assert admin.is_active


def test_unknown_staff_member_is_404(client, make_staff):
    client.force_login(make_staff(Role.ADMIN))
    assert client.post(reverse("people:staff-role", args=[999999]), {"role": "admin"}).status_code == 404


def test_nobody_changes_their_own_role_and_the_page_says_so(client, make_staff):
    admin, other = make_staff(Role.ADMIN), make_staff(Role.ADMIN)
    client.force_login(admin)
    page = client.get(reverse("people:staff")).content.decode()
    assert f'id="role-{admin.pk}"' not in page and f'id="role-{other.pk}"' in page  # no control for oneself
    response = client.post(reverse("people:staff-role", args=[admin.pk]), {"role": "reviewer"}, follow=True)
    assert "Role not changed: you cannot change your own role; another admin can." in response.content.decode()
    assert role_of(admin) == Role.ADMIN
    assert not AuditEvent.objects.filter(action=AuditAction.STAFF_ROLE_CHANGED).exists()


def test_the_last_active_admin_keeps_her_role_and_stays_active():
    from reviewapp.audit.services import Actor
    from reviewapp.people.services import StaffError, staff_create, staff_set_active, staff_set_role

    shell = Actor(type="system", display="manage.py")
    ada, _ = staff_create(actor=shell, username="ada", role=Role.ADMIN)
    bo, _ = staff_create(actor=shell, username="bo", role=Role.ADMIN)
    staff_set_active(actor=ada, user=bo, active=False)  # an inactive admin manages nobody
    with pytest.raises(StaffError, match="ada is the last active admin"):
        staff_set_role(actor=shell, user=ada, role=Role.REVIEWER)
    with pytest.raises(StaffError, match="ada is the last active admin"):
        staff_set_active(actor=shell, user=ada, active=False)
    ada.refresh_from_db()
    assert role_of(ada) == Role.ADMIN and ada.is_active
    # With a second active admin, either may demote the other.
    staff_set_active(actor=ada, user=bo, active=True)
    staff_set_role(actor=bo, user=ada, role=Role.REVIEWER)
    assert role_of(ada) == Role.REVIEWER


def test_deactivating_a_staff_member_is_confirmed_first(client, make_staff):
    admin, kofi = make_staff(Role.ADMIN), make_staff(Role.REVIEWER, username="kofi")
    client.force_login(admin)
    assert '<button type="submit" class="button-danger">Deactivate <span class="visually-hidden">kofi' in (
        client.get(reverse("people:staff")).content.decode())
    asks = client.post(reverse("people:staff-active", args=[kofi.pk]), {"active": "0"})
    html = asks.content.decode()
    assert asks.status_code == 200 and "Deactivate kofi?" in html and "cannot sign in until an admin" in html
    assert 'name="confirm" value="1"' in html and 'class="button-danger">Deactivate kofi</button>' in html
    kofi.refresh_from_db()
    assert kofi.is_active and not AuditEvent.objects.filter(action=AuditAction.STAFF_DEACTIVATED).exists()
    client.post(reverse("people:staff-active", args=[kofi.pk]), {"active": "0", "confirm": "1"})
    kofi.refresh_from_db()
    assert not kofi.is_active
    client.post(reverse("people:staff-active", args=[kofi.pk]), {"active": "1"})  # reactivating asks nothing
    kofi.refresh_from_db()
    assert kofi.is_active
