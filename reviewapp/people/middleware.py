"""A staff member holding a one-time password can do nothing but choose their own (or sign out)."""

from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

from .services import api_token_used_today, record_api_token_use

# Answered with 403 rather than a redirect that an API client would not follow (the API docs page redirects).
API_PATHS = ("/api/v1/", "/api/schema/")


class PasswordChangeRequiredMiddleware:
    """Sends a signed-in user with ``must_change_password`` to the change-password page from every other page.

    API requests made with that session get 403 instead (``API_PATHS``).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and getattr(user, "must_change_password", False):
            allowed = {reverse("people:password-change"), reverse("people:logout")}
            # Static files never get here: WhiteNoise answers them before the session is read.
            if request.path not in allowed:
                if request.path.startswith(API_PATHS):
                    return JsonResponse({"detail": "Choose a new password first (/password/)."}, status=403)
                return redirect("people:password-change")
        return self.get_response(request)


class StaffTokenUseMiddleware:
    """Records that a staff API token served a request, once the answer is known (reviewapp.people.auth marks the
    request): only an answer below 400 counts, and only the day's first (services.record_api_token_use)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        token = getattr(request, "staff_api_token", None)
        if token is not None and response.status_code < 400 and not api_token_used_today(token):
            record_api_token_use(token=token)
        return response
