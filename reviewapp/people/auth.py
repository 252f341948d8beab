"""Staff API tokens on the API: ``Authorization: Token <secret>``, looked up by its SHA-256.

The token acts as its person, with their role's permissions (the same as their session, no more). Revoked,
expired, or belonging to a deactivated person (or one holding a one-time password), it is refused with 401.
A token request carries no cookie, so it needs no CSRF token (a session request still does: DRF's
SessionAuthentication, listed first, checks CSRF whenever the session is what authenticated).

Failures are rate limited per client address (``API_TOKEN_FAILURE_RATE_LIMIT``, django-ratelimit): past the
limit every token request from that address is answered 429 until the window passes, even with a good token,
so guessing earns nothing.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from django_ratelimit.core import get_usage
from rest_framework import authentication, exceptions, status

from .models import StaffApiToken
from .tokens import token_digest

REALM = 'Token realm="reviewapp staff API"'
FAILURE_GROUP = "people.api-token-failures"


class TokenRefused(exceptions.APIException):
    """401 with a WWW-Authenticate challenge. Not DRF's AuthenticationFailed: DRF turns that into 403 when the
    first authentication class (the session's) has no challenge to offer."""

    status_code = status.HTTP_401_UNAUTHORIZED
    default_code = "authentication_failed"
    auth_header = REALM


def _failures(request, *, count: bool) -> dict | None:
    return get_usage(request, group=FAILURE_GROUP, key="ip", increment=count,
                     rate=lambda group, request: settings.API_TOKEN_FAILURE_RATE_LIMIT)


def _at_failure_limit(request) -> bool:
    """The address has used up its failures (a rate of "20/m": 20 refused tokens, then 429 until the minute
    passes). django-ratelimit's own ``should_limit`` is one later (count > limit)."""
    usage = _failures(request, count=False)  # None: rate limits are switched off (RATELIMIT_ENABLE)
    return usage is not None and (usage["should_limit"] or usage["count"] >= usage["limit"])


def header_secret(request, keyword: str, *, refused: type[exceptions.APIException] | None = None) -> str | None:
    """The secret of ``Authorization: <keyword> <secret>``, or None when the request names no such scheme (another
    authentication class may take it). A malformed header raises ``refused`` (401). Detector tokens use it too."""
    refused = refused or TokenRefused
    header = authentication.get_authorization_header(request).split()
    if not header or header[0].lower() != keyword.lower().encode():
        return None
    if len(header) != 2:
        raise refused(f"Authorization must be '{keyword} <token>' with one token.")
    try:
        return header[1].decode()
    except UnicodeError:
        raise refused("The token contains invalid characters.") from None


class StaffTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Token"

    def authenticate(self, request):
        django_request = request._request
        try:
            secret = header_secret(request, self.keyword)
            if secret is None:
                return None
            if _at_failure_limit(django_request):
                raise exceptions.Throttled(detail="Too many failed token attempts from this address; try again later.")
            row = self._token(secret)
        except TokenRefused:
            _failures(django_request, count=True)
            raise
        # Read by people.middleware.StaffTokenUseMiddleware once the answer is known.
        django_request.staff_api_token = row
        return row.user, row

    def _token(self, secret: str) -> StaffApiToken:
        row = StaffApiToken.objects.select_related("user").filter(token_hash=token_digest(secret)).first()
        if row is None:
            raise TokenRefused("Unknown API token.")
        if row.revoked_at is not None:
            raise TokenRefused("This API token was revoked.")
        if row.expires_at is not None and row.expires_at <= timezone.now():
            raise TokenRefused("This API token has expired.")
        if not row.user.is_active:
            raise TokenRefused("The staff member this token belongs to is deactivated.")
        if row.user.must_change_password:
            raise TokenRefused("Its owner holds a one-time password: they must choose their own before the token "
                               "works again.")
        return row

    def authenticate_header(self, request) -> str:
        return REALM
