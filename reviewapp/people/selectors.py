from __future__ import annotations

from axes.helpers import get_cool_off, get_failure_limit
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.db.models import Max, QuerySet, Sum
from django.utils import timezone

from .roles import Role


def role_of(user) -> Role | None:
    """The role a user holds (each staff member holds exactly one), or None."""
    names = [group.name for group in user.groups.all()]
    for name in names:
        if name in Role.values:
            return Role(name)
    return None


def staff_for_listing() -> QuerySet:
    return get_user_model().objects.prefetch_related("groups").order_by("username")


def staff_member_or_404(pk: int):
    from django.shortcuts import get_object_or_404

    return get_object_or_404(get_user_model(), pk=pk)


def locked_sign_ins() -> list[dict]:
    """Usernames locked out of sign-in now (django-axes, AXES_LOCKOUT_PARAMETERS = username), most recent first.

    Each: ``{"username", "failures", "last_attempt", "known"}``. A name that belongs to nobody is listed too:
    such names are locked exactly like real ones (a lockout must not tell an attacker that a name exists).
    """
    attempts = AccessAttempt.objects.all()
    cool_off = get_cool_off()
    if cool_off:
        attempts = attempts.filter(attempt_time__gte=timezone.now() - cool_off)
    rows = list(
        attempts.values("username").annotate(failures=Sum("failures_since_start"), last_attempt=Max("attempt_time"))
        .filter(failures__gte=get_failure_limit(None, None)).order_by("-last_attempt")
    )
    known = set(get_user_model().objects.filter(username__in=[row["username"] for row in rows])
                .values_list("username", flat=True))
    return [{**row, "known": row["username"] in known} for row in rows]


def api_tokens_of(user) -> QuerySet:
    """A person's own API tokens, newest first (revoked and expired ones too: the page says which)."""
    from .models import StaffApiToken

    return StaffApiToken.objects.filter(user=user).order_by("-created_at", "-pk")


def own_api_token_or_404(user, pk: int):
    """One of the person's own tokens; anyone else's is not found (it is not theirs to see or revoke)."""
    from django.shortcuts import get_object_or_404

    return get_object_or_404(api_tokens_of(user), pk=pk)
