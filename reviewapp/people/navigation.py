"""What the navigation shows each role. One list: an entry appears for a user who holds its permission.

Later apps add their pages here (queues, cases, policy, sharing, appeals) as they are built.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse

from .roles import Role
from .selectors import role_of


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    permission: str | None  # None: every signed-in staff member
    shortcut: str = ""


NAVIGATION: tuple[NavItem, ...] = (
    NavItem("Home", "core:home", None, "g h"),
    NavItem("Queues", "review:queues", "cases.claim_case", "g q"),
    NavItem("Approvals", "review:approvals", "cases.approve_decision", "g r"),
    NavItem("Forum re-reviews", "forum:rereviews", "forum.view_inboundrereview"),
    NavItem("Appeals", "appeal-review:queue", "appeals.view_appeal", "g l"),
    NavItem("Policy", "policy:current", "policy.view_policyversion", "g p"),
    NavItem("Compliance", "compliance:home", "audit.view_auditevent", "g c"),
    NavItem("Decision register", "compliance:decisions", "audit.view_auditevent", "g e"),
    NavItem("Audit trail", "audit:events", "audit.view_auditevent", "g a"),
    NavItem("Staff", "people:staff", "people.view_user", "g s"),
    NavItem("Detectors", "detectors:list", "flags.view_detector", "g d"),
    NavItem("Forum shares", "forum:shares", "forum.view_shareproposal", "g f"),
    NavItem("My Forum shares", "forum:shares", "forum.propose_share"),
    NavItem("Sharing register", "forum:register", "forum.view_shareproposal"),
    NavItem("Forum inbound", "forum:inbound", "forum.view_inboundobject", "g i"),
    NavItem("Deliveries", "outbox:messages", "outbox.view_outboxmessage", "g o"),
    NavItem("API docs", "api-docs", None),
    NavItem("API tokens", "people:api-tokens", None),
    NavItem("Change password", "people:password-change", None),
)


def items_for(user) -> list[dict]:
    if not user.is_authenticated:
        return []
    if getattr(user, "must_change_password", False):  # nothing else opens until then (people.middleware)
        return [{"label": "Change password", "url": reverse("people:password-change"), "shortcut": ""}]
    return [
        {"label": item.label, "url": reverse(item.url_name), "shortcut": item.shortcut}
        for item in NAVIGATION
        if item.permission is None or user.has_perm(item.permission)
    ]


def navigation(request) -> dict:
    """Template context processor: the navigation and the signed-in person's role."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": [], "current_role": None}
    role = role_of(user)
    return {
        "nav_items": items_for(user),
        "current_role": role.label if isinstance(role, Role) else ("Superuser" if user.is_superuser else None),
    }
