"""The client's address, as far as this deployment can know it. The one place a client address is read.

Behind reverse proxies ``REMOTE_ADDR`` is the nearest proxy, so every client would share one address (one
client's failed sign-ins would lock everyone else out). ``X-Forwarded-For`` is only as trustworthy as the
proxies that appended to it: each trusted hop appends the address it saw, and anything to the left of
what they appended was written by the client and may be forged. With ``TRUSTED_PROXY_HOPS = N`` the client
is the Nth address from the right; with 0 (the default) the header is ignored.

Used by the audit trail (sign-ins), django-ratelimit (``RATELIMIT_IP_META_KEY``) and django-axes
(``AXES_CLIENT_IP_CALLABLE``).
"""

from __future__ import annotations

from ipaddress import ip_address

from django.conf import settings


def _valid(address: str) -> str | None:
    try:
        return str(ip_address(address.strip()))
    except ValueError:
        return None


def client_ip(request) -> str | None:
    """The client's IP address: ``REMOTE_ADDR``, or the address the last trusted proxy saw."""
    if request is None:
        return None
    remote = request.META.get("REMOTE_ADDR")
    hops = settings.TRUSTED_PROXY_HOPS
    if hops <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if len(forwarded) < hops:
        # Fewer entries than trusted proxies: the request did not come through all of them (or a proxy
        # is misconfigured). The leftmost entry was still written by a proxy we trust, never by the client.
        return _valid(forwarded[0]) if forwarded else remote
    return _valid(forwarded[-hops]) or remote
