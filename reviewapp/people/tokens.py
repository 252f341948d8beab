"""Bearer secrets stored only as their SHA-256: the one home of token minting and hashing.

Used by staff API tokens (``people``) and detector tokens (``flags``, a layer above, which imports it from
here). A secret is 256 random bits behind a public marker (``rvs_`` staff, ``rvd_`` detectors) that makes a
leaked one easy to scan for; the database keeps its digest and a short prefix to tell tokens apart on a page.
"""

from __future__ import annotations

import hashlib
import secrets

PREFIX_CHARS = 6  # random characters kept after the marker, for display


def token_new(marker: str) -> str:
    """A fresh secret: ``marker`` followed by 256 random bits, URL-safe."""
    return marker + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    # Tokens are 256 random bits: a fast hash is enough (no dictionary to attack), and lookups stay O(1).
    return hashlib.sha256(token.encode()).hexdigest()


def token_display_prefix(token: str, marker: str) -> str:
    """What a page shows of a token (``rvs_AbC12x…``): enough to recognise it, useless to an attacker."""
    return token[: len(marker) + PREFIX_CHARS]
