"""Sign-in links for account holders: signed, expiring, single-use (the appeals portal uses them).

Account holders are not staff and have no password here. A link carries a random secret, signed with
the site key (tampering is refused before any lookup); only the secret's SHA-256 is stored, and using a
link consumes it.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from reviewapp.audit.actions import AuditAction
from reviewapp.audit.services import Actor, record

from .models import Account, HolderLink

_SALT = "reviewapp.holder-link"


class HolderLinkError(Exception):
    """Why a link does not sign anyone in: expired, used, or not ours. Shown to the holder as is."""


def holder_actor(account: Account) -> Actor:
    return Actor(type="holder", id=account.external_id, display=f"holder of {account.external_id}")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def holder_link_issue(*, account: Account, purpose: str) -> str:
    """Create a link (in the caller's transaction) and return its absolute URL."""
    secret = secrets.token_urlsafe(32)
    HolderLink.objects.create(account=account, token_hash=_digest(secret), purpose=purpose,
                              expires_at=timezone.now() + timedelta(hours=settings.HOLDER_LINK_HOURS))
    token = signing.dumps(secret, salt=_SALT, compress=False)
    return f"{settings.PUBLIC_BASE_URL}{reverse('appeals:sign-in', args=[token])}"


@transaction.atomic
def holder_link_use(*, token: str) -> Account:
    """Consume a link and return the account it signs in to. Raises HolderLinkError naming why not."""
    try:
        secret = signing.loads(token, salt=_SALT)
    except signing.BadSignature:
        raise HolderLinkError(_("This link is not valid. Ask for a new one below.")) from None
    link = HolderLink.objects.select_for_update().select_related("account").filter(token_hash=_digest(secret)).first()
    if link is None:
        raise HolderLinkError(_("This link is not valid. Ask for a new one below."))
    if link.used_at is not None:
        raise HolderLinkError(_("This link was already used. Ask for a new one below."))
    if link.expires_at <= timezone.now():
        raise HolderLinkError(_("This link has expired. Ask for a new one below."))
    link.used_at = timezone.now()
    link.save(update_fields=["used_at"])
    record(actor=holder_actor(link.account), action=AuditAction.HOLDER_SIGNED_IN, target=link.account,
           data={"link": link.pk, "purpose": link.purpose})
    return link.account
