"""Demo logins for `make run`: one staff member per role, with passwords kept under .data/ (demo only)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from reviewapp.audit.services import Actor

from . import services
from .roles import Role

DEMO_ACTOR = Actor(type="system", id="seed_demo", display="seed_demo (demo data)")

# Fictional people, one per role.
DEMO_STAFF: dict[Role, tuple[str, str, str]] = {
    Role.REVIEWER: ("rhea", "Rhea", "Okafor"),
    Role.SENIOR_REVIEWER: ("sam", "Samir", "Lindqvist"),
    Role.SHARING_OFFICER: ("shay", "Shay", "Moreau"),
    Role.COMPLIANCE_OFFICER: ("cora", "Cora", "Haddad"),
    Role.ADMIN: ("ada", "Ada", "Brennan"),
}


def _passwords_file() -> Path:
    return Path(settings.DATA_DIR) / "demo-logins.json"


def _demo_passwords() -> dict[str, str]:
    path = _passwords_file()
    known = json.loads(path.read_text()) if path.exists() else {}
    for username, *_ in DEMO_STAFF.values():
        known.setdefault(username, f"demo-{secrets.token_urlsafe(9)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(known, indent=2))
    path.chmod(0o600)
    return known


@transaction.atomic
def demo_staff_ensure() -> list[tuple[Role, str, str]]:
    """Create the demo staff that are missing and return (role, username, password) for each."""
    passwords = _demo_passwords()
    logins = []
    existing = {user.username: user for user in get_user_model().objects.filter(
        username__in=[username for username, *_ in DEMO_STAFF.values()])}
    for role, (username, first, last) in DEMO_STAFF.items():
        if username not in existing:
            services.staff_create(actor=DEMO_ACTOR, username=username, role=role, first_name=first,
                                  last_name=last, email=f"{username}@reviewapp.example", password=passwords[username])
        elif not existing[username].check_password(passwords[username]):
            services.staff_set_password(actor=DEMO_ACTOR, user=existing[username], password=passwords[username])
        logins.append((role, username, passwords[username]))
    return logins
