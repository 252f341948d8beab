"""Changes to staff and their sessions. Each function writes its audit event in the same transaction."""

from __future__ import annotations

import secrets
from datetime import datetime, time

from axes.utils import reset as axes_reset
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.services import Actor, Target, record
from reviewapp.limits import ensure_within_limits

from .models import StaffApiToken
from .roles import Role
from .selectors import role_of
from .tokens import token_digest, token_display_prefix, token_new

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
    must_change_password: bool | None = None,
) -> tuple[User, str]:
    """Create a staff member in exactly one role. Returns the user and the password (shown once).

    A password generated here is a one-time password: the new member must choose their own at first
    sign-in (``must_change_password``; pass True for a password someone else chose and handed over too).
    """
    role = Role(role)
    ensure_within_limits(User, error=StaffError, username=username, email=email, first_name=first_name,
                         last_name=last_name)
    if User.objects.filter(username__iexact=username).exists():
        raise StaffError(f"a user named {username!r} already exists")
    if must_change_password is None:
        must_change_password = password is None
    password = password or generate_password()
    user = User(username=username, email=email, first_name=first_name, last_name=last_name,
                must_change_password=must_change_password)
    validate_password(password, user)
    user.set_password(password)
    user.save()
    user.groups.set([Group.objects.get(name=role.value)])
    record(actor=actor, action=AuditAction.STAFF_CREATED, target=user,
           data={"username": username, "role": role.value, "email": email})
    if must_change_password:
        record(actor=actor, action=AuditAction.STAFF_PASSWORD_ISSUED, target=user,
               data={"username": user.get_username()})
    return user, password


def _ensure_another_active_admin(user: User, *, change: str) -> None:
    """Refuse a change that would leave no active admin: nobody could manage staff, and only the command line
    (``create_staff``) would recover. The active admins are locked, so two admins demoting each other at the
    same moment cannot both succeed."""
    admins = set(User.objects.select_for_update(of=("self",)).filter(is_active=True, groups__name=Role.ADMIN.value)
                 .values_list("pk", flat=True))
    if admins <= {user.pk}:
        raise StaffError(f"{user.get_username()} is the last active admin: {change} would leave nobody to manage "
                         "staff. Make someone else an admin first")


@transaction.atomic
def staff_set_role(*, actor: Actor | User, user: User, role: Role) -> User:
    """Move a staff member to another role (one role each, so permissions stay readable).

    Nobody changes their own role (another admin does: no one-click self-lockout, no self-promotion), and the
    last active admin keeps hers.
    """
    role = Role(role)
    user = User.objects.select_for_update().get(pk=user.pk)
    before = role_of(user)
    if before == role:
        return user
    if getattr(actor, "pk", None) == user.pk:
        raise StaffError("you cannot change your own role; another admin can")
    if before == Role.ADMIN and user.is_active:
        _ensure_another_active_admin(user, change=f"making them {role.label.lower()}")
    user.groups.set([Group.objects.get(name=role.value)])
    record(actor=actor, action=AuditAction.STAFF_ROLE_CHANGED, target=user,
           data={"from": before.value if before else None, "to": role.value})
    return user


@transaction.atomic
def staff_set_active(*, actor: Actor | User, user: User, active: bool) -> User:
    """Deactivate (never delete: decisions keep naming who took them) or reactivate a staff member.

    Nobody deactivates themselves, and the last active admin is never deactivated.
    """
    user = User.objects.select_for_update().get(pk=user.pk)
    if getattr(actor, "pk", None) == user.pk and not active:
        raise StaffError("you cannot deactivate yourself")
    if user.is_active == active:
        return user
    if not active and role_of(user) == Role.ADMIN:
        _ensure_another_active_admin(user, change="deactivating them")
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


@transaction.atomic
def staff_password_issue(*, actor: Actor | User, user: User) -> str:
    """Give a staff member a new one-time password (returned, shown once; never stored or audited in clear).

    Their sessions end (the password hash changes) and they must choose their own at next sign-in.
    """
    user = User.objects.select_for_update().get(pk=user.pk)
    if getattr(actor, "pk", None) == user.pk:
        raise StaffError("change your own password on the change-password page")
    password = generate_password()
    user.set_password(password)
    user.must_change_password = True
    user.save(update_fields=["password", "must_change_password"])
    record(actor=actor, action=AuditAction.STAFF_PASSWORD_ISSUED, target=user, data={"username": user.get_username()})
    return password


@transaction.atomic
def staff_password_change(*, user: User, new_password: str, old_password: str | None = None) -> User:
    """A staff member chooses their own password (Django's validators).

    The current password is required, except on the forced change after a one-time password, which was
    entered at sign-in moments ago. The new password cannot be the current one, so a one-time password
    never survives its change. The audit event says whether the change was forced, never the password.
    """
    user = User.objects.select_for_update().get(pk=user.pk)
    forced = user.must_change_password
    if not forced and (old_password is None or not user.check_password(old_password)):
        raise ValidationError("Your current password was entered incorrectly.", code="password_incorrect")
    if user.check_password(new_password):
        raise ValidationError("Choose a password different from your current one.", code="password_unchanged")
    validate_password(new_password, user)
    user.set_password(new_password)
    user.must_change_password = False
    user.save(update_fields=["password", "must_change_password"])
    record(actor=user, action=AuditAction.STAFF_PASSWORD_CHANGED, target=user,
           data={"username": user.get_username(), "forced": forced})
    return user


@transaction.atomic
def staff_sign_in_unlock(*, actor: Actor | User, username: str) -> int:
    """Lift the per-account sign-in lockout of a username (django-axes); returns the failed attempts cleared.

    The username need not exist: names that exist and names that do not are locked alike, so that a lockout
    tells an attacker nothing.
    """
    cleared = axes_reset(username=username)
    known = User.objects.filter(username=username).values_list("pk", flat=True).first()
    record(actor=actor, action=AuditAction.STAFF_SIGN_IN_UNLOCKED,
           target=Target(type="people.user", id=str(known)) if known else None,
           data={"username": username[:150], "failed_attempts_cleared": cleared})
    return cleared


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


# --- Staff API tokens (``Authorization: Token <secret>``; reviewapp.people.auth) ---------------------------------

API_TOKEN_MARKER = "rvs_"  # noqa: S105 — a public marker that makes leaked staff tokens easy to scan for


class ApiTokenError(ValueError):
    """A token that cannot be issued or revoked; the message says why."""


def _same_person(actor, user) -> bool:
    return getattr(actor, "pk", None) is not None and actor.pk == user.pk


@transaction.atomic
def issue_api_token(*, actor: User, user: User, name: str,
                    expires_at: datetime | None = None) -> tuple[StaffApiToken, str]:
    """A new API token for a staff member. Returns the row and the secret, which is shown once and never stored.

    Least privilege: a token is its person's own (nobody issues one that acts as someone else), it acts with
    their role's permissions and nothing more, and only staff hold one (a role; account holders have none).
    """
    user = User.objects.select_for_update().get(pk=user.pk)
    if not _same_person(actor, user):
        raise ApiTokenError("a staff member issues their own API tokens; nobody issues one that acts as someone else")
    if not user.is_active:
        raise ApiTokenError(f"{user.get_username()} is deactivated")
    if role_of(user) is None:
        raise ApiTokenError("only staff members with a role can hold API tokens")
    if user.must_change_password:
        raise ApiTokenError("choose your own password first")
    name = name.strip()
    if not name:
        raise ApiTokenError("give the token a name that says what uses it")
    ensure_within_limits(StaffApiToken, error=ApiTokenError, name=name)
    if expires_at is not None and expires_at <= timezone.now():
        raise ApiTokenError("the expiry must be in the future")
    secret = token_new(API_TOKEN_MARKER)
    row = StaffApiToken.objects.create(user=user, name=name, prefix=token_display_prefix(secret, API_TOKEN_MARKER),
                                       token_hash=token_digest(secret), expires_at=expires_at)
    record(actor=actor, action=AuditAction.STAFF_API_TOKEN_CREATED, target=row,
           data={"user": user.get_username(), "name": name, "prefix": row.prefix,
                 "expires_at": expires_at.isoformat() if expires_at else None})
    return row, secret


@transaction.atomic
def revoke_api_token(*, actor: User, token: StaffApiToken) -> StaffApiToken:
    """Revoke one's own token: from now on it authenticates nobody. Revoking it again changes nothing.

    Someone else's token is not theirs to revoke (an admin deactivates the person instead, which stops every
    token of theirs at once)."""
    token = StaffApiToken.objects.select_for_update().select_related("user").get(pk=token.pk)
    if not _same_person(actor, token.user):
        raise ApiTokenError("a staff member revokes only their own API tokens")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        record(actor=actor, action=AuditAction.STAFF_API_TOKEN_REVOKED, target=token,
               data={"user": token.user.get_username(), "name": token.name, "prefix": token.prefix})
    return token


def api_token_used_today(token: StaffApiToken, *, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    return token.last_used_at is not None and token.last_used_at >= _start_of_day(now)


def _start_of_day(now: datetime) -> datetime:
    return datetime.combine(timezone.localdate(now), time.min, tzinfo=timezone.get_current_timezone())


@transaction.atomic
def record_api_token_use(*, token: StaffApiToken) -> bool:
    """Note that a token served a request: ``last_used_at`` and a ``staff.api_token_used`` event, once a day.

    Called after a request the token authenticated was answered without an error (people.middleware), so a
    token the API refused, or a read-only officer's refused write, leaves no trace but the refusal. Later
    requests the same day cost nothing (the conditional UPDATE matches no row; the caller skips even that when
    the row it loaded was already stamped today). Returns whether this was the day's first use.
    """
    now = timezone.now()
    stamped = (StaffApiToken.objects.filter(pk=token.pk)
               .filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=_start_of_day(now)))
               .update(last_used_at=now))
    if stamped:
        token.last_used_at = now
        record(actor=token.user, action=AuditAction.STAFF_API_TOKEN_USED, target=token,
               data={"name": token.name, "prefix": token.prefix})
    return bool(stamped)
