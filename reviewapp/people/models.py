from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A person who signs in to reviewapp. Their role is the Django group they belong to (see roles.py)."""

    # Set when an admin or `create_staff` issues a one-time password: until the person chooses their own,
    # every page sends them to the change-password page (people.middleware).
    must_change_password = models.BooleanField(default=False)

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"


class StaffApiToken(models.Model):
    """A staff member's API token (``Authorization: Token <secret>``), for tooling that has no browser session.

    The secret is shown once, when it is issued, and only its SHA-256 is kept (``reviewapp.people.tokens``). It
    authenticates as its person with their role's permissions, no more; revoked, expired, or belonging to a
    deactivated person, it authenticates nobody (``reviewapp.people.auth``). Never deleted: the audit trail names it.
    """

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="api_tokens")
    name = models.CharField("name", max_length=100, help_text="What uses it, e.g. “compliance export job”.")
    prefix = models.CharField(max_length=16)  # the marker and a few characters, to recognise it on a page
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The first request of the latest day it served (recorded once a day, so a busy token costs no writes).
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = "staff API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def state(self, now) -> str:
        """``active``, ``revoked`` or ``expired`` at ``now``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"
