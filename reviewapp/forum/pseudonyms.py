"""Keyed pseudonyms for what identifies an account or an organisation (DESIGN.md invariant 6).

HMAC-SHA256 under the Forum key (ENISA, *Pseudonymisation techniques and best practices*, 2019: an
unkeyed hash falls to a dictionary attack). The key comes from the environment (``FORUM_PSEUDONYM_KEY``)
and is never written to the database; its id (``FORUM_PSEUDONYM_KEY_ID``) travels in every bundle so
the key can be rotated and a receiver knows which key a pseudonym was made under. The key is
Forum-wide, so members who hold it can match each other's pseudonyms (inbound matching hashes local
identifiers the same way). Only dev/test settings carry a default key.

The HMAC message is ``"<kind>:<identifier>"`` (kind ``account`` or ``organization``), so an account id and
an organisation id that happen to be equal get different pseudonyms.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

SCHEME = "hmac-sha256"


class PseudonymKeyMissing(ImproperlyConfigured):
    """No Forum key is configured: nothing that carries a pseudonym can be built."""


@dataclass(frozen=True)
class ForumKey:
    id: str
    secret: bytes

    def __repr__(self) -> str:  # never the secret, not even in a traceback
        return f"ForumKey(id={self.id!r})"


def forum_key() -> ForumKey:
    secret = getattr(settings, "FORUM_PSEUDONYM_KEY", "")
    key_id = getattr(settings, "FORUM_PSEUDONYM_KEY_ID", "")
    if not secret or not key_id:
        raise PseudonymKeyMissing(
            "FORUM_PSEUDONYM_KEY and FORUM_PSEUDONYM_KEY_ID must be set in the environment to share with the Forum")
    return ForumKey(id=key_id, secret=secret.encode())


def pseudonym(kind: str, identifier: str, *, key: ForumKey | None = None) -> str:
    """The hex HMAC-SHA256 of ``kind:identifier`` under the Forum key."""
    if kind not in {"account", "organization"}:
        raise ValueError(f"pseudonym kind must be 'account' or 'organization', not {kind!r}")
    key = key or forum_key()
    return hmac.new(key.secret, f"{kind}:{identifier}".encode(), hashlib.sha256).hexdigest()


def account_pseudonym(external_id: str, *, key: ForumKey | None = None) -> str:
    return pseudonym("account", external_id, key=key)


def organization_pseudonym(organization_id: str, *, key: ForumKey | None = None) -> str:
    return pseudonym("organization", organization_id, key=key)
