"""Changes to staff and their sessions. Each function writes its audit event in the same transaction."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.db import transaction

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.services import Actor, Target, record

from .roles import Role
from .selectors import role_of

User = get_user_model()


class StaffError(ValueError):
    """A staff change that cannot be made; the message says why."""


def generate_password() -> str:
    return secrets.token_urlsafe(15)


@transaction.atomic
def staff_create(
    *,
    actor: Actor | User,
    username: str,
    role: Role,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    password: str | None = None,
) -> tuple[User, str]:
    """Create a staff member in exactly one role. Returns the user and the password (shown once)."""
    role = Role(role)
    if User.objects.filter(username__iexact=username).exists():
        raise StaffError(f"a user named {username!r} already exists")
    password = password or generate_password()
    user = User(username=username, email=email, first_name=first_name, last_name=last_name)
    validate_password(password, user)
    user.set_password(password)
    user.save()
    user.groups.set([Group.objects.get(name=role.value)])
    record(actor=actor, action=AuditAction.STAFF_CREATED, target=user,
           data={"username": username, "role": role.value, "email": email})
    return user, password


@transaction.atomic
def staff_set_role(*, actor: Actor | User, user: User, role: Role) -> User:
    """Move a staff member to another role (one role each, so permissions stay readable)."""
    role = Role(role)
    user = User.objects.select_for_update().get(pk=user.pk)
    before = role_of(user)
    if before == role:
        return user
    user.groups.set([Group.objects.get(name=role.value)])
    record(actor=actor, action=AuditAction.STAFF_ROLE_CHANGED, target=user,
           data={"from": before.value if before else None, "to": role.value})
    return user


@transaction.atomic
def staff_set_active(*, actor: Actor | User, user: User, active: bool) -> User:
    """Deactivate (never delete: decisions keep naming who took them) or reactivate a staff member."""
    user = User.objects.select_for_update().get(pk=user.pk)
    if getattr(actor, "pk", None) == user.pk and not active:
        raise StaffError("you cannot deactivate yourself")
    if user.is_active == active:
        return user
    user.is_active = active
    user.save(update_fields=["is_active"])
    record(actor=actor, action=AuditAction.STAFF_REACTIVATED if active else AuditAction.STAFF_DEACTIVATED,
           target=user, data={"username": user.get_username()})
    return user


@transaction.atomic
def staff_set_password(*, actor: Actor | User, user: User, password: str) -> User:
    """Set a new password (validated). The audit event never contains the password."""
    user = User.objects.select_for_update().get(pk=user.pk)
    validate_password(password, user)
    user.set_password(password)
    user.save(update_fields=["password"])
    record(actor=actor, action=AuditAction.STAFF_PASSWORD_RESET, target=user, data={"username": user.get_username()})
    return user


def session_login_record(*, user: User, ip: str | None) -> None:
    record(actor=user, action=AuditAction.AUTH_LOGIN, target=user, data={"ip": ip})


def session_logout_record(*, user: User | None, ip: str | None) -> None:
    if user is None:  # an already-expired session being closed: nothing happened to anyone
        return
    record(actor=user, action=AuditAction.AUTH_LOGOUT, target=user, data={"ip": ip})


def session_login_failed_record(*, username: str, ip: str | None) -> None:
    """A failed sign-in names the username tried (never the password) and where it came from."""
    known = User.objects.filter(username=username).values_list("pk", flat=True).first()
    target = Target(type="people.user", id=str(known)) if known else None
    record(actor=Actor(type="anonymous", display=username[:150]), action=AuditAction.AUTH_LOGIN_FAILED,
           target=target, data={"username": username[:150], "ip": ip, "known_user": known is not None})
