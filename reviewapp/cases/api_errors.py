"""What every API of ours shares: service refusals mapped onto HTTP the same way, and the role checked before
the body. It lives with the case API, its lowest user (DESIGN.md: a helper shared by several layers lives at
the level of its lowest user); the appeals APIs, above it, import it from here."""

from collections.abc import Callable
from typing import TypeVar

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from rest_framework.exceptions import APIException, PermissionDenied, ValidationError
from rest_framework.permissions import BasePermission

T = TypeVar("T")

# Text patterns the schema states and the Forum API's serializers enforce (a RegexField).
NO_NUL = r"^[^\x00]*$"
NOT_BLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"  # something besides whitespace (DRF trims it), and no NUL


class Conflict(APIException):
    status_code = 409
    default_detail = "Conflict."
    default_code = "conflict"


def service_errors(call: Callable[[], T], *, conflicts: tuple[type[Exception], ...],
                   problems: tuple[type[Exception], ...]) -> T:
    """Run a service call: not allowed → 403, a conflict with the current state → 409, a problem with
    what was sent → 400; each with the service's own message. (Conflicts are checked first, so a
    conflict type may subclass a problem type.)"""
    try:
        return call()
    except conflicts as exc:
        raise Conflict(str(exc)) from exc
    except problems as exc:
        raise ValidationError({"detail": str(exc)}) from exc
    except DjangoPermissionDenied as exc:
        raise PermissionDenied(str(exc)) from exc


class RolePermits(BasePermission):
    """The role's model permission for a write, checked before the body is parsed: someone whose role may
    never do it (a compliance officer claiming a case) is told 403 at once, not first asked to fix a body
    they may not send anyway. The service still checks everything, the object-level rules included.

    The view names them: ``role_permissions = {"claim": ("cases.claim_case", "Your role does not claim
    cases."), ...}``, keyed by the viewset action (or the lower-case method of a plain APIView). Actions not
    listed (reads) pass."""

    message = "Your role may not do this."

    def has_permission(self, request, view) -> bool:
        key = getattr(view, "action", None) or request.method.lower()
        needed = getattr(view, "role_permissions", {}).get(key)
        if needed is None:
            return True
        permission, self.message = needed
        return request.user.has_perm(permission)
