"""Demo logins for `make run`: the staff of every flow, with their one-time passwords kept under .data/ (demo only)."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from reviewapp.audit.services import Actor

from . import services
from .roles import Role

DEMO_ACTOR = Actor(type="system", id="seed_demo", display="seed_demo (demo data)")

# Fictional people, enough for every flow (tests/core/test_seed_demo.py walks them): a senior's severe decision
# needs another senior to approve it, and an appeal against it a third senior who took no part (invariant 5);
# two reviewers, so claims and queues are more than one person's work.
DEMO_STAFF: tuple[tuple[Role, str, str, str], ...] = (
    (Role.REVIEWER, "rhea", "Rhea", "Okafor"),
    (Role.REVIEWER, "ravi", "Ravi", "Menon"),
    (Role.SENIOR_REVIEWER, "sam", "Samir", "Lindqvist"),
    (Role.SENIOR_REVIEWER, "sena", "Sena", "Adeyemi"),
    (Role.SENIOR_REVIEWER, "theo", "Theo", "Kowalski"),
    (Role.SHARING_OFFICER, "shay", "Shay", "Moreau"),
    (Role.COMPLIANCE_OFFICER, "cora", "Cora", "Haddad"),
    (Role.ADMIN, "ada", "Ada", "Brennan"),
)
# Printed in place of the password of someone who has already chosen their own (the one-time one is spent).
OWN_PASSWORD = "(chose their own password)"  # noqa: S105 (words, not a password)


@dataclass(frozen=True)
class DemoLogin:
    role: Role
    username: str
    password: str  # the one-time password, or OWN_PASSWORD


def _passwords_file() -> Path:
    return Path(settings.DATA_DIR) / "demo-logins.json"


def _demo_passwords() -> dict[str, str]:
    path = _passwords_file()
    known = json.loads(path.read_text()) if path.exists() else {}
    for _, username, *_ in DEMO_STAFF:
        known.setdefault(username, f"demo-{secrets.token_urlsafe(9)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(known, indent=2))
    path.chmod(0o600)
    return known


@transaction.atomic
def demo_staff_ensure() -> list[DemoLogin]:
    """Create the demo staff that are missing and return each one's login.

    Their passwords are one-time passwords, as an admin would hand out: each person chooses their own at
    first sign-in (``must_change_password``). Until then a later run prints the same one (and puts it back
    if it was changed behind the demo's back); after it, the person's own password is left alone.
    """
    passwords = _demo_passwords()
    logins = []
    existing = {user.username: user for user in get_user_model().objects.filter(
        username__in=[username for _, username, *_ in DEMO_STAFF])}
    for role, username, first, last in DEMO_STAFF:
        user = existing.get(username)
        if user is None:
            services.staff_create(actor=DEMO_ACTOR, username=username, role=role, first_name=first,
                                  last_name=last, email=f"{username}@reviewapp.example", password=passwords[username],
                                  must_change_password=True)
        elif not user.must_change_password:
            logins.append(DemoLogin(role, username, OWN_PASSWORD))
            continue
        elif not user.check_password(passwords[username]):
            services.staff_set_password(actor=DEMO_ACTOR, user=user, password=passwords[username])
        logins.append(DemoLogin(role, username, passwords[username]))
    return logins
