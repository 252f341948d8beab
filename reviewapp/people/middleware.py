"""A staff member holding a one-time password can do nothing but choose their own (or sign out)."""

from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse


class PasswordChangeRequiredMiddleware:
    """Sends a signed-in user with ``must_change_password`` to the change-password page from every other page.

    API requests made with that session get 403 instead of a redirect a client would not follow.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and getattr(user, "must_change_password", False):
            allowed = {reverse("people:password-change"), reverse("people:logout")}
            # Static files never get here: WhiteNoise answers them before the session is read.
            if request.path not in allowed:
                if request.path.startswith("/api/"):
                    return JsonResponse({"detail": "Choose a new password first (/password/)."}, status=403)
                return redirect("people:password-change")
        return self.get_response(request)
