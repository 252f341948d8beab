"""Detector authentication: ``Authorization: Bearer <token>``, looked up by its SHA-256.

The flag endpoint accepts this and nothing else, so a staff session can never post as a detector.
"""

from __future__ import annotations

from dataclasses import dataclass

from rest_framework import authentication, exceptions, permissions

from reviewapp.audit.services import Actor
from reviewapp.people.auth import header_secret
from reviewapp.people.tokens import token_digest

from .models import Detector, DetectorToken


@dataclass(frozen=True)
class DetectorPrincipal:
    """``request.user`` for a detector: not a person, holds no model permissions."""

    detector: Detector
    token: DetectorToken
    is_authenticated: bool = True
    is_staff: bool = False
    is_superuser: bool = False

    @property
    def actor(self) -> Actor:
        return Actor(type="detector", id=self.detector.slug, display=f"{self.detector.slug} ({self.token.prefix}…)")

    def has_perm(self, perm, obj=None) -> bool:
        return False


class DetectorTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        token = header_secret(request, self.keyword, refused=exceptions.AuthenticationFailed)
        if token is None:
            return None
        row = (DetectorToken.objects.select_related("detector")
               .filter(token_hash=token_digest(token)).first())
        if row is None:
            raise exceptions.AuthenticationFailed("Unknown detector token.")
        if row.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This detector token was revoked.")
        if not row.detector.active:
            raise exceptions.AuthenticationFailed(f"Detector '{row.detector.slug}' is inactive.")
        return DetectorPrincipal(detector=row.detector, token=row), row

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="detectors"'


class IsDetector(permissions.BasePermission):
    message = "Only a detector token may post flags."

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, DetectorPrincipal)
