from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

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
