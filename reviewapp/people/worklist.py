"""Selectors for the admin's home page: staff accounts that need attention (one query each)."""

from __future__ import annotations

from django.contrib.auth import get_user_model


def staff_awaiting_first_sign_in_count() -> int:
    """Active staff still holding a one-time password (they have not chosen their own yet)."""
    return get_user_model().objects.filter(is_active=True, must_change_password=True).count()
