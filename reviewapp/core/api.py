"""What every API of ours shares: service refusals mapped onto HTTP the same way."""

from collections.abc import Callable
from typing import TypeVar

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from rest_framework.exceptions import APIException, PermissionDenied, ValidationError

T = TypeVar("T")


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
